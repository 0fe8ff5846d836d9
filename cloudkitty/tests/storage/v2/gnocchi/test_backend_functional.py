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
"""What the Gnocchi backend adds to the shared suite, on a real Gnocchi.

Against the server of ``CLOUDKITTY_TEST_GNOCCHI_URL``: the rules Gnocchi
imposes (frames on the granularity, 255-character values, buckets mixed by
separate pushes), a delete whose rewrite was cut short by a crash, two
stores on one server, an archive policy that does not fit, a store of the
older layout, which reads answer totals (frame sums, daily sums, points),
the catalogue a whole-month delete forgets, a read racing a delete, and a
server that is down.
"""

import concurrent.futures
import datetime
import decimal
import threading
import uuid

from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from cloudkitty import dataframe
from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import gnocchi
from cloudkitty.storage.v2.gnocchi import mapping
from cloudkitty.tests import daemon
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests import functional_env
from cloudkitty.tests import gnocchi_provision

D = decimal.Decimal
HOUR = builders.HOUR
T0 = builders.T0
EVER = dict(begin=builders.EVER[0], end=builders.EVER[1])


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class GnocchiBackendTest(gnocchi_provision.GnocchiStoreMixin,
                         testtools.TestCase):
    """Gnocchi's own rules and faults, on a real Gnocchi."""

    def setUp(self):
        super().setUp()
        self.conf = self.new_conf()
        self.store = self.new_store(self.conf)
        self.addCleanup(type(self).delete_resources)
        self.project_id = str(uuid.uuid4())

    def new_conf(self):
        conf = cfg.ConfigOpts()
        self.useFixture(config_fixture.Config(conf))
        for group, opts in storage.list_opts():
            conf.register_opts(opts, group=group)
        self.configure_gnocchi(conf)
        return conf

    def new_store(self, conf, init=True):
        store = storage.get_storage(conf=conf, backend='gnocchi')
        self.addCleanup(store.close)
        if init:
            store.init()
        return store

    def push(self, frames, store=None):
        (store or self.store).push(frames)
        self.wait_processed()

    def mine(self):
        return {'project_id': self.project_id}

    def point(self, qty=1, price=1, **groupby):
        return builders.make_point(self.project_id, qty, price,
                                   groupby=groupby)

    def count(self, store=None):
        return (store or self.store).retrieve(
            filters=self.mine(), paginate=False, **EVER)['total']

    def test_frame_off_the_granularity_is_refused(self):
        """A frame that does not start on the granularity writes nothing."""
        good = builders.make_frame(T0, [('cpu', self.point())])
        odd = builders.make_frame(T0 + datetime.timedelta(minutes=5),
                                  [('cpu', self.point())])
        error = self.assertRaises(exceptions.InvalidQuery, self.store.push,
                                  [good, odd])
        self.assertEqual('dataframes', error.argument)
        self.wait_processed()
        self.assertEqual(0, self.count())

    def test_long_values_are_refused_before_writing(self):
        """Values over 255 characters are refused; 255 are kept."""
        kept = builders.make_frame(T0, [('cpu', self.point(label='x' * 255))])
        self.push([kept])
        for labels in ({'label': 'y' * 256}, {'k' * 256: 'v'}):
            frame = builders.make_frame(T0, [('cpu', self.point(**labels))])
            self.assertRaises(exceptions.InvalidQuery, self.store.push,
                              [frame])
        self.wait_processed()
        self.assertEqual(1, self.count())

    def test_separate_pushes_of_different_points_mix_a_bucket(self):
        """total() stays right; retrieve() refuses rather than guesses."""
        for qty in (1, 2):
            self.push([builders.make_frame(T0, [('cpu', self.point(qty))])])
        result = self.store.total(filters=self.mine(), **EVER)['results']
        self.assertEqual(D(3), result[0]['qty'])
        error = self.assertRaises(exceptions.StorageError,
                                  self.store.retrieve, filters=self.mine(),
                                  **EVER)
        self.assertIn('cannot be listed', str(error))
        # NOTE: deleting the period is the way out, as the docs say.
        self.assertEqual(2, self.store.delete(filters=self.mine(), **EVER))
        self.wait_processed()
        self.assertEqual(0, self.count())

    def test_equal_and_different_points_of_one_push_are_kept(self):
        """One push: equal points share a slot, others get their own."""
        points = [('cpu', self.point(1))] * 3 + [('cpu', self.point(2))]
        frames = [builders.make_frame(T0, points)]
        self.push(frames)
        self.push(frames)
        got = sorted(point.qty for frame in self.store.retrieve(
            filters=self.mine(), paginate=False, **EVER)['dataframes']
            for _, point in frame.iterpoints())
        self.assertEqual([1] * 6 + [2] * 2, got)

    def crash_in_rewrite(self, after_delete):
        """Run a delete's rewrite up to a crash, as it would happen."""
        frames = [builders.make_frame(T0 + i * HOUR, [
            ('cpu', self.point(i + 1))]) for i in range(3)]
        self.push(frames)
        client = self.store._api()
        window = dict(begin=T0, end=T0 + HOUR)
        real_delete = client.delete_resources
        real_call = client.call

        def crash_on_commit(function, *args, **kwargs):
            if getattr(function, '__name__', '') == 'update':
                raise RuntimeError('crash before the commit')
            return real_call(function, *args, **kwargs)

        def crash_on_delete(ids):
            raise RuntimeError('crash before deleting the old resource')

        if after_delete:
            client.call = crash_on_commit
        else:
            client.delete_resources = crash_on_delete
        try:
            self.assertRaises(RuntimeError, self.store.delete,
                              filters=self.mine(), **window)
        finally:
            client.delete_resources = real_delete
            client.call = real_call
        self.wait_processed()

    def test_crash_before_the_old_resource_is_deleted(self):
        """The rewrite stays hidden; recovery undoes it."""
        self.crash_in_rewrite(after_delete=False)
        self.assertEqual(3, self.count())
        self.store._recover(self.store._api(), min_age=0)
        self.wait_processed()
        self.assertEqual(3, self.count())
        self.assertEqual(1, self.store.delete(
            filters=self.mine(), begin=T0, end=T0 + HOUR))
        self.wait_processed()
        self.assertEqual(2, self.count())

    def test_crash_after_the_old_resource_is_deleted(self):
        """Recovery makes the rewritten resource visible."""
        self.crash_in_rewrite(after_delete=True)
        # NOTE: until the recovery, the kept points are pending (hidden).
        self.assertEqual(0, self.count())
        self.store._recover(self.store._api(), min_age=0)
        self.assertEqual(2, self.count())
        total = self.store.total(filters=self.mine(), **EVER)['results']
        self.assertEqual(D(5), total[0]['qty'])

    def test_recovery_leaves_live_resources_alone(self):
        """Only pending resources are touched by the recovery."""
        self.push([builders.make_frame(T0, [('cpu', self.point())])])
        client = self.store._api()
        self.store._recover(client, min_age=0)
        found = client.search_all(self.store.pack_type, {
            '=': {'ck_key': self.project_id}})
        self.assertEqual([None], [r['ck_pending'] for r in found])

    def test_young_pending_rewrites_are_left_alone(self):
        """A rewrite younger than the timeout may still be running."""
        self.crash_in_rewrite(after_delete=True)
        self.store._recover(self.store._api())
        self.assertEqual(0, self.count())

    def test_two_prefixes_are_two_stores(self):
        """Stores with other prefixes on one Gnocchi never meet."""
        other_conf = self.new_conf()
        other_conf.set_override('resource_type_prefix',
                                'ck%s_' % uuid.uuid4().hex[:12],
                                group='storage_gnocchi')
        other = self.new_store(other_conf)
        self.addCleanup(other._api().call,
                        other._api().api.resource.batch_delete,
                        {'in': {'type': [other.rating_type,
                                         other.pack_type]}},
                        resource_type='generic')
        frame = builders.make_frame(T0, [('cpu', self.point())])
        self.push([frame], store=other)
        self.push([frame])
        self.assertEqual(1, self.count(other))
        self.assertEqual(1, self.store.delete(**EVER))
        self.wait_processed()
        self.assertEqual(1, self.count(other))
        self.assertEqual(0, self.count())

    def test_archive_policy_that_does_not_fit_is_refused(self):
        """init() names what is wrong with an existing policy."""
        conf = self.new_conf()
        conf.set_override('granularity', 600, group='storage_gnocchi')
        store = self.new_store(conf, init=False)
        error = self.assertRaises(exceptions.StorageError, store.init)
        self.assertIn('no granularity of 0:10:00', str(error))

    def test_missing_policy_without_management_is_refused(self):
        conf = self.new_conf()
        conf.set_override('archive_policy_name', 'ck-none-%s'
                          % uuid.uuid4().hex, group='storage_gnocchi')
        conf.set_override('manage_archive_policy', False,
                          group='storage_gnocchi')
        store = self.new_store(conf, init=False)
        error = self.assertRaises(exceptions.StorageError, store.init)
        self.assertIn('manage_archive_policy is off', str(error))

    def test_push_before_init_says_so(self):
        """Without init() the types are missing: a clear StorageError."""
        conf = self.new_conf()
        conf.set_override('resource_type_prefix',
                          'ck%s_' % uuid.uuid4().hex[:12],
                          group='storage_gnocchi')
        store = self.new_store(conf, init=False)
        error = self.assertRaises(
            exceptions.StorageError, store.push,
            [builders.make_frame(T0, [('cpu', self.point())])])
        self.assertIn('run init() first', str(error))

    def test_server_down_is_backend_unavailable(self):
        """No server: init() raises BackendUnavailable naming the URL."""
        conf = self.new_conf()
        url = 'http://127.0.0.1:%d' % daemon.free_ports(1)[0]
        conf.set_override('endpoint', url, group='storage_gnocchi')
        store = self.new_store(conf, init=False)
        error = self.assertRaises(exceptions.BackendUnavailable, store.init)
        self.assertIn(url, str(error))

    def test_filter_value_is_data(self):
        """Upstream's InfluxQL injection is a plain value here too."""
        value = 'nobody\' OR "project_id"<>\''
        self.push([builders.make_frame(T0, [('cpu', self.point())])])
        self.assertEqual(0, self.store.delete(
            filters={'project_id': value}, **EVER))
        self.assertEqual(0, self.store.delete(
            filters={'project_id': [value, "x' OR '1'='1"]}, **EVER))
        self.wait_processed()
        self.assertEqual(1, self.count())
        # NOTE: the label key exists; its column is hashed from it.
        self.assertIn(mapping.column(mapping.GROUPBY, 'project_id'),
                      self.store._columns)

    def aggregates_read(self):
        """Record the resource types and operations of total()'s reads."""
        client = self.store._api()
        read = []
        real = client.aggregates

        def recording(operations, resource_type, search, **kwargs):
            read.append((resource_type, operations))
            return real(operations, resource_type, search, **kwargs)

        client.aggregates = recording
        self.addCleanup(setattr, client, 'aggregates', real)
        return read

    def push_mixed(self):
        """Points with a str, an int and no project_id, in two frames."""
        other = builders.make_point(self.project_id, 4, 8,
                                    groupby={'project_id': 7, 'x': 'a'})
        bare = dataframe.DataPoint('unit', 16, 32, {}, {'x': 'b'})
        self.push([builders.make_frame(T0 + i * HOUR, [
            ('cpu', self.point(D('0.1'), D('0.2'))),
            ('cpu', other), ('ram', bare)]) for i in range(2)])

    def test_frame_sums_answer_totals_by_type_and_project_id(self):
        """total() by type, project_id and time reads the packs' sums."""
        read = self.aggregates_read()
        self.push_mixed()
        got = self.store.total(groupby=['type', 'project_id', 'time'],
                               paginate=False, **EVER)['results']
        self.assertEqual({(self.store.pack_type, gnocchi.FRAME_OPERATIONS)},
                         set(read))
        rows = sorted((r['type'], repr(r['project_id']), r['begin'],
                       r['qty'], r['rate']) for r in got)
        want = sorted(
            (type_, repr(project), T0 + i * HOUR, D(qty), D(price))
            for i in range(2) for type_, project, qty, price in (
                ('cpu', self.project_id, '0.1', '0.2'),
                ('cpu', 7, '4', '8'), ('ram', '', '16', '32')))
        self.assertEqual(want, rows)
        counted = self.store.total(
            filters={'project_id': ['7']},
            custom_fields='count(qty) AS n, avg(price) AS p',
            **EVER)['results']
        self.assertEqual([(D(2), D(8))],
                         [(r['n'], r['p']) for r in counted])

    def test_label_totals_read_daily_sums_or_points(self):
        """Whole days read the daily sums; the rest reads the points."""
        read = self.aggregates_read()
        self.push_mixed()
        want = {'': (D('0.2'), D('0.4')), 'a': (D(8), D(16)),
                'b': (D(32), D(64))}

        def by_x(**window):
            got = self.store.total(groupby=['x'], **window)['results']
            return {r['x']: (r['qty'], r['rate']) for r in got}

        self.assertEqual(want, by_x(**EVER))
        self.assertEqual({(self.store.pack_type, gnocchi.DAY_OPERATIONS)},
                         set(read))
        del read[:]
        # NOTE: a window that cuts a day: frames are selected by start.
        self.assertEqual(want, by_x(begin=T0, end=T0 + 2 * HOUR))
        self.assertEqual({self.store.pack_type}, {r[0] for r in read})
        self.assertNotIn(gnocchi.DAY_OPERATIONS, {r[1] for r in read})
        self.assertEqual({'a': (D(4), D(8))},
                         {r['x']: (r['qty'], r['rate']) for r in
                          self.store.total(groupby=['x'], begin=T0 + HOUR,
                                           end=T0 + 2 * HOUR,
                                           filters={'x': 'a'})['results']})
        got = self.store.total(groupby=['x'], custom_fields='max(qty) AS m',
                               **EVER)['results']
        self.assertEqual({'': D('0.1'), 'a': D(4), 'b': D(16)},
                         {r['x']: r['m'] for r in got})

    def test_init_refuses_a_store_of_the_series_layout(self):
        """A store of one resource per series is refused, not misread."""
        conf = self.new_conf()
        prefix = 'ck%s_' % uuid.uuid4().hex[:12]
        conf.set_override('resource_type_prefix', prefix,
                          group='storage_gnocchi')
        client = self.store._api()
        old = dict(mapping.FIXED_ATTRIBUTES)
        for name in ('ck_series', 'ck_pack', 'ck_offset'):
            del old[name]
        client.call(client.api.resource_type.create,
                    {'name': prefix + 'rating', 'attributes': old})
        self.addCleanup(client.call, client.api.resource_type.delete,
                        prefix + 'rating')
        client.create_resource(prefix + 'rating', {
            'id': str(uuid.uuid4()), 'ck_type': 'cpu', 'ck_unit': 'h',
            'ck_period': 3600, 'ck_month': 1, 'ck_slot': 0})
        self.addCleanup(client.read, client.api.resource.batch_delete,
                        {'=': {'type': prefix + 'rating'}},
                        resource_type='generic')
        store = self.new_store(conf, init=False)
        error = self.assertRaises(exceptions.StorageError, store.init)
        self.assertIn('series layout', str(error))

    def entries(self):
        client = self.store._api()
        return client.search_all(self.store.rating_type, {
            '=': {mapping.column(mapping.GROUPBY, 'project_id'):
                  self.project_id}})

    def test_whole_month_delete_forgets_the_catalogue(self):
        """Entries go with their packs; every instance learns it."""
        other = self.new_store(self.new_conf())
        frame = builders.make_frame(T0, [('cpu', self.point())])
        self.push([frame], store=other)
        self.assertEqual(1, len(self.entries()))
        client = self.store._api()
        epoch = self.store.catalogue.epoch(client)
        self.assertEqual(1, self.store.delete(filters=self.mine(), **EVER))
        self.assertEqual([], self.entries())
        self.assertNotEqual(epoch, self.store.catalogue.epoch(client))
        # NOTE: the other instance remembered where the series was.
        self.push([builders.make_frame(T0, [('ram', self.point(2))]),
                   frame], store=other)
        self.assertEqual(2, len(self.entries()))
        self.assertEqual(2, self.count())
        got = self.store.total(groupby=['type'], filters=self.mine(),
                               **EVER)['results']
        self.assertEqual({'cpu': D(1), 'ram': D(2)},
                         {r['type']: r['qty'] for r in got})

    def test_writers_claiming_the_same_new_series_agree(self):
        """Instances pushing new series at once share one entry each.

        Pushes alone are safe from several processes (the declared limit
        is about deletes): four instances, each with its own client,
        push the same eight new series and two of their own into one
        pack at once; every point counts and no series gets two offsets.
        """
        writers = 4
        stores = [self.new_store(self.new_conf()) for _ in range(writers)]
        barrier = threading.Barrier(writers)

        def push(writer):
            points = [('cpu', self.point(host='shared-%d' % n))
                      for n in range(8)]
            points += [('cpu', self.point(2, host='own-%d-%d' % (writer, n)))
                       for n in range(2)]
            barrier.wait(timeout=60)
            stores[writer].push([builders.make_frame(T0, points)])

        with concurrent.futures.ThreadPoolExecutor(writers) as pool:
            for future in [pool.submit(push, w) for w in range(writers)]:
                future.result(timeout=300)
        self.wait_processed()
        entries = self.entries()
        self.assertEqual(8 + 2 * writers, len(entries))
        self.assertEqual(len(entries), len({(e['ck_pack'], e['ck_offset'])
                                            for e in entries}))
        self.assertEqual(10 * writers, self.count())
        got = self.store.total(groupby=['host'], filters=self.mine(),
                               **EVER)['results']
        want = {'shared-%d' % n: D(writers) for n in range(8)}
        want.update({'own-%d-%d' % (w, n): D(2) for w in range(writers)
                     for n in range(2)})
        self.assertEqual(want, {r['host']: r['qty'] for r in got})

    def test_a_read_racing_a_delete_misses_the_deleted_points(self):
        """Points whose pack went meanwhile are skipped, not an error."""
        self.push([builders.make_frame(T0, [('cpu', self.point())])])
        client = self.store._api()
        real = self.store._entries_at

        def deleted_meanwhile(client, places):
            self.store.delete(filters=self.mine(), **EVER)
            return real(client, places)

        self.store._entries_at = deleted_meanwhile
        got = self.store.retrieve(filters=self.mine(), **EVER)
        self.assertEqual([], [point for frame in got['dataframes']
                              for point in frame.iterpoints()])
        self.store._entries_at = real
        self.push([builders.make_frame(T0, [('cpu', self.point())])])
        # NOTE: an entry gone while its pack stays is an error.
        client.delete_resources([entry['id'] for entry in self.entries()])
        error = self.assertRaises(exceptions.StorageError,
                                  self.store.retrieve, filters=self.mine(),
                                  **EVER)
        self.assertIn('no series of the catalogue names', str(error))
