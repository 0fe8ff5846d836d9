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
"""Typed labels: groupby and metadata values that are not str."""

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import requires
from cloudkitty.tests.storage.v2.suite.common import T0
from cloudkitty.tests.storage.v2.suite.common import typed_rows
from cloudkitty.tests.storage.v2.suite.common import TYPED_VALUES


class TypedLabelTests:
    """Groupby and metadata values that are not str (rule 3).

    Values may be str, int, float, bool or None and come back with their
    type; a filter value matches when it equals ``str(value)``; total()
    groups by value *and* type (:func:`cloudkitty.storage.v2.query.
    encode_label`). The values are :data:`~.common.TYPED_VALUES`.

    Data: each test pushes its own points under fresh project ids and
    reads back only those; the one delete filters on the test's project.
    ``cleanup_backend()`` runs after every test.
    """

    def typed_frames(self, values=TYPED_VALUES, start=T0):
        """One point per value, as groupby ``g`` and metadata ``m``."""
        return [builders.make_frame(start, [
            ('cpu', builders.make_point(self.project_id, i + 1, i + 1,
                                        groupby={'g': value},
                                        metadata={'m': value}))
            for i, value in enumerate(values)])]

    def test_typed_labels_round_trip(self):
        """Rule 3: int, float, bool and None labels keep their type."""
        frames = self.typed_frames()
        self.push(frames)
        result = self.retrieve(begin=T0, end=T0 + HOUR, paginate=False)
        self.assertEqual(typed_rows(frames), typed_rows(result['dataframes']))

    def test_typed_labels_equal_values_stay_apart(self):
        """Rule 3: 1, 1.0, True (and 0.0, -0.0) are other values, always."""
        values = (1, 1.0, True, 0.0, -0.0, 0, False)
        frames = self.typed_frames(values) + self.typed_frames(
            tuple(reversed(values)), start=T0 + HOUR)
        # NOTE: pushed twice, so that a second push meets warm caches.
        self.push(frames[:1])
        self.push(frames[1:])
        self.push(frames[:1])
        result = self.retrieve(begin=T0, end=T0 + 2 * HOUR, paginate=False)
        self.assertEqual(typed_rows(frames + frames[:1]),
                         typed_rows(result['dataframes']))

    def test_typed_labels_group_by_value_and_type(self):
        """Rule 5: total() groups by value and type, typed, in order."""
        values = (3, 3.0, '3', True, 1, None, 'None', '', 3)
        frames = self.typed_frames(values)
        frames[0].add_point(builders.make_point(self.project_id, 100, 100),
                            'cpu')
        self.push(frames)
        window = {'begin': T0, 'end': T0 + HOUR}
        for key in ('g', 'm'):
            result = self.totals(groupby=[key], **window)
            self.assertEqual(
                [('NoneType', 'None', D(6)), ('bool', 'True', D(4)),
                 ('int', '1', D(5)), ('int', '3', D(10)),
                 ('float', '3.0', D(2)), ('str', "''", D(108)),
                 ('str', "'3'", D(3)), ('str', "'None'", D(7))],
                [(type(r[key]).__name__, repr(r[key]), r['qty'])
                 for r in result['results']], key)
            self.assertOracle(frames, groupby=[key], **window)
            self.assertOracle(frames, groupby=['type', key, 'time'],
                              **window)

    def test_typed_labels_filter_by_string_form(self):
        """Rule 3: a filter value matches the values it is str() of."""
        frames = self.typed_frames()
        self.push(frames)
        window = {'begin': T0, 'end': T0 + HOUR}
        cases = {'3': [3, '3'], '3.0': [3.0], 'True': [True, 'True'],
                 'None': [None, 'None'], '1': [1], '1.0': [1.0],
                 '-0.0': [-0.0], '0': [0], '': [''], '1e-05': [1e-05],
                 '100000000000000000000': [10 ** 20], 'true': [],
                 '03': []}
        for text, expected in cases.items():
            for key in ('g', 'm'):
                filters = self.mine(**{key: text})
                found = self.retrieve(filters=filters, paginate=False,
                                      **window)
                self.assertEqual(
                    sorted((type(v).__name__, repr(v)) for v in expected),
                    sorted((type(p.groupby['g']).__name__,
                            repr(p.groupby['g']))
                           for f in found['dataframes']
                           for _, p in f.iterpoints()), (key, text))
                self.assertOracle(frames, filters=filters,
                                  groupby=['g'], **window)
        self.assertOracle(frames, filters=self.mine(g=['3', 'None', 'x']),
                          groupby=['m'], **window)

    @requires('delete_with_filters')
    def test_typed_labels_delete_by_string_form(self):
        """Rule 3: delete(filters=...) matches str(value) too."""
        frames = self.typed_frames()
        self.push(frames)
        self.delete(begin=T0, end=T0 + HOUR, filters=self.mine(g='3'))
        kept = query.evaluate_delete(query.validate_delete(
            begin=T0, end=T0 + HOUR, filters={'g': '3'}), frames)[1]
        self.assertEqual(len(TYPED_VALUES) - 2, sum(map(len, kept)))
        self.assertEqual(typed_rows(kept), typed_rows(self.retrieve(
            begin=T0, end=T0 + HOUR, paginate=False)['dataframes']))

    def test_typed_label_at_max_value_length(self):
        """Rule 3: max_value_length counts a value's str() characters."""
        length = self.storage.features.max_value_length or 1000
        values = (10 ** (length - 1), -10 ** (length - 2), str(10 ** 3))
        frames = self.typed_frames(values)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + HOUR}
        result = self.retrieve(paginate=False, **window)
        self.assertEqual(typed_rows(frames), typed_rows(result['dataframes']))
        self.assertOracle(frames, groupby=['g'], **window)
        self.assertEqual(1, self.retrieve(
            filters=self.mine(m=str(values[1])), **window)['total'])

    def test_typed_label_over_max_value_length_like_str(self):
        """Rule 3: a value whose str() is over the limit fares like a str.

        Both are refused with InvalidQuery, writing nothing, or both kept.
        """
        length = self.storage.features.max_value_length
        if length is None:
            self.skipTest('%s lacks max_value_length'
                          % self.storage_backend)
        outcomes = []
        for value in ('9' * (length + 1), 10 ** length):
            frames = self.typed_frames((value,))
            before = self.snapshot()
            try:
                self.push(frames)
            except exceptions.InvalidQuery as exc:
                self.assertEqual('dataframes', exc.argument)
                self.assertEqual(before, self.snapshot())
                outcomes.append('refused')
                continue
            found = self.retrieve(begin=T0, end=T0 + HOUR, filters=self.mine(
                g=str(value)), paginate=False)
            self.assertEqual(typed_rows(frames),
                             typed_rows(found['dataframes']))
            outcomes.append('kept')
        self.assertEqual(outcomes[0], outcomes[1], outcomes)
