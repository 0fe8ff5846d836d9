# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""push(idempotency_key=...): a retried push is stored once."""

import uuid

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import expect
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import lacks
from cloudkitty.tests.storage.v2.suite.common import requires
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import T0


class IdempotencyTests:
    """push(idempotency_key=...): a retried push is stored once.

    Keys are data, unique per test (:meth:`key`); a key reused for
    other data is refused; a delete forgets the keys of its window.
    Needs ``idempotent_push``.

    Data: each test pushes its own points under fresh project ids and reads
    back only those, but ``test_delete_elsewhere_keeps_the_key`` deletes by
    window alone, which reaches every scope of the store: parallel workers
    need a database each. ``cleanup_backend()`` runs after every test.
    """

    def key(self, name='push'):
        """Return an idempotency key unique to this test."""
        return '%s/%s/%s' % (self.scope_id, self.project_id, name)

    @requires('idempotent_push')
    def test_retry_with_the_same_key_counts_once(self):
        """A push retried with its key is stored once."""
        frames = builders.sample_frames(self.project_id)
        for _ in range(3):
            self.push(frames, idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + 3 * HOUR, 36, D('3.53'))]},
            self.totals(begin=T0, end=T0 + 3 * HOUR))

    @requires('idempotent_push')
    def test_retry_recognised_in_any_frame_order(self):
        """A retry rebuilt in another order is still the same push."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        self.push(list(reversed(frames)), idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('idempotent_push')
    def test_other_keys_count_every_push(self):
        """The same frames under two keys (or none) count each time."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key('a'))
        self.push(frames, idempotency_key=self.key('b'))
        self.push(frames)
        self.assertEqual(sorted(rows(frames) * 3), self.snapshot())

    @requires('idempotent_push')
    def test_key_reused_for_other_data_is_refused(self):
        """A key already used by other data: InvalidQuery, nothing stored."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        other = builders.sample_frames(self.project_id, start=T0 + DAY)
        self.assertInvalid('idempotency_key', self.storage.push, other,
                           scope_id=self.scope_id,
                           idempotency_key=self.key())
        self.assertInvalid('idempotency_key', self.storage.push, frames,
                           scope_id=str(uuid.uuid4()),
                           idempotency_key=self.key())
        self.assertInvalid('idempotency_key', self.storage.push, frames[:2],
                           scope_id=self.scope_id,
                           idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('idempotent_push')
    def test_refused_push_leaves_its_key_free(self):
        """A push refused for bad data claims nothing: a fixed one lands."""
        bad = [builders.make_frame(T0, [('cpu', builders.make_point(
            self.project_id, 1, builders.MONEY_OUT_OF_RANGE[0]))])]
        self.assertInvalid(None, self.storage.push, bad,
                           scope_id=self.scope_id,
                           idempotency_key=self.key())
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('idempotent_push')
    def test_delete_forgets_the_keys_of_its_window(self):
        """A period deleted to be rated again is stored again (re-rating)."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        self.delete(begin=T0 + HOUR, end=T0 + 2 * HOUR,
                    filters={'project_id': self.project_id})
        self.push(frames, idempotency_key=self.key())
        expected = sorted(rows(frames) + rows(frames[::2]))
        self.assertEqual(expected, self.snapshot())

    @requires('idempotent_push')
    def test_delete_elsewhere_keeps_the_key(self):
        """A delete of another window keeps a push's key (retries no-op)."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        self.delete(begin=T0 + DAY, end=T0 + 2 * DAY)
        self.push(frames, idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('idempotent_push')
    def test_bad_keys_are_refused(self):
        """A key that is not a str of 1 to 255 storable characters."""
        frames = builders.sample_frames(self.project_id)
        for key in ('', 'k' * 256, 42, b'key', 'nul\x00', '\ud800'):
            self.assertInvalid('idempotency_key', self.storage.push, frames,
                               scope_id=self.scope_id, idempotency_key=key)

    @requires('idempotent_push')
    def test_tricky_keys_are_data(self):
        """Quotes, unicode, case, trailing spaces, 255 characters: data."""
        scope = self.scope_id
        keys = [scope + "it's", scope + '"; DROP TABLE ck_point; --',
                scope + '\u00e9t\u00e9 \U0001f600', scope + 'a',
                scope + 'a ', scope + 'A',
                scope + 'k' * (query.MAX_KEY_LENGTH - len(scope))]
        for index, key in enumerate(keys):
            frames = builders.sample_frames(self.project_id,
                                            start=T0 + index * DAY)
            self.push(frames, idempotency_key=key)
            self.push(frames, idempotency_key=key)
        self.assertEqual(6 * len(keys), len(self.snapshot()))

    @lacks('idempotent_push')
    def test_key_not_supported(self):
        """Without idempotent_push a key is NotSupported; nothing stored."""
        frames = builders.sample_frames(self.project_id)
        self.assertRaises(exceptions.NotSupported, self.storage.push,
                          frames, scope_id=self.scope_id,
                          idempotency_key=self.key())
        self.wait_for_backend()
        self.assertEqual([], self.snapshot())

    @requires('concurrent_writers', 'idempotent_push')
    def test_concurrent_retries_with_one_key_count_once(self):
        """Writers retrying the same keyed pushes at once store each once."""
        def make_frames(writer, push):
            point = builders.make_point(self.project_id, 1, D('0.25'))
            return [builders.make_frame(T0 + push * HOUR,
                                        [('cpu', point)] * 3)]

        self._run_writers(make_frames,
                          lambda writer, push: '%s/%d' % (self.scope_id,
                                                          push))
        count = self.pushes_per_writer * 3
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + DAY, count, D(count) / 4)]},
            self.totals(begin=T0, end=T0 + DAY))
