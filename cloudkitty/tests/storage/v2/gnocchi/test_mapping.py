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
"""Unit tests of the Gnocchi mapping and bucket decoding (no server)."""

import datetime
import decimal
import re
import types

import fixtures
import testtools

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import gnocchi as gnocchi_backend
from cloudkitty.storage.v2.gnocchi import buckets
from cloudkitty.storage.v2.gnocchi import client as client_mod
from cloudkitty.storage.v2.gnocchi import mapping
from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders

UTC = datetime.timezone.utc
D = decimal.Decimal
ATTRIBUTE_NAME = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_]{0,62}$')


def point(groupby=None, metadata=None, description=None):
    return dataframe.DataPoint('unit', 1, 2, groupby or {'p': 'x'},
                               metadata or {}, description)


class ColumnTest(testtools.TestCase):

    def test_every_tricky_key_is_a_valid_attribute_name(self):
        names = set()
        for key in builders.TRICKY_KEYS + ('type', 'id', 'x' * 255):
            for role in (mapping.GROUPBY, mapping.METADATA):
                name = mapping.column(role, key)
                self.assertRegex(name, ATTRIBUTE_NAME)
                names.add(name)
        self.assertEqual(2 * (len(builders.TRICKY_KEYS) + 3), len(names))

    def test_label_ids_depend_on_the_store(self):
        self.assertNotEqual(mapping.label_id('a_label', 'k'),
                            mapping.label_id('b_label', 'k'))


class TimeTest(testtools.TestCase):

    def test_iso_ns_keeps_nanoseconds(self):
        start = mapping.to_ns(builders.T0)
        self.assertEqual('2021-03-10T00:00:00.000000007+00:00',
                         mapping.iso_ns(start + 7))
        self.assertEqual('2021-03-10T00:59:59.999999999+00:00',
                         mapping.iso_ns(start + 3600 * 10 ** 9 - 1))

    def test_ns_are_the_shared_micros_scaled(self):
        moment = datetime.datetime(1969, 12, 31, 23, 59, 59, 5, tzinfo=UTC)
        self.assertEqual(-999995000, mapping.to_ns(moment))
        self.assertEqual(moment, query.from_micros(
            mapping.to_ns(moment) // 1000))

    def test_month_numbers(self):
        number = mapping.month_number(builders.T0)
        self.assertEqual(2021 * 12 + 2, number)
        self.assertEqual(
            (datetime.datetime(2021, 3, 1, tzinfo=UTC),
             datetime.datetime(2021, 4, 1, tzinfo=UTC)),
            mapping.month_range(number))

    def test_clock_never_repeats(self):
        clock = mapping.Clock()
        first = clock.reserve(5)
        self.assertGreaterEqual(clock.reserve(1), first + 5)


class SeriesTest(testtools.TestCase):

    def test_id_depends_on_every_label_and_slot(self):
        base = mapping.Series('t_rating', 's', 'cpu', point(), 3600, 1, 0)
        others = [
            mapping.Series('u_rating', 's', 'cpu', point(), 3600, 1, 0),
            mapping.Series('t_rating', None, 'cpu', point(), 3600, 1, 0),
            mapping.Series('t_rating', 's', 'ram', point(), 3600, 1, 0),
            mapping.Series('t_rating', 's', 'cpu', point(), 1800, 1, 0),
            mapping.Series('t_rating', 's', 'cpu', point(), 3600, 2, 0),
            mapping.Series('t_rating', 's', 'cpu', point(), 3600, 1, 1),
            mapping.Series('t_rating', 's', 'cpu', point(
                metadata={'p': 'x'}, groupby={'q': 'x'}), 3600, 1, 0),
            mapping.Series('t_rating', 's', 'cpu', point(
                description=''), 3600, 1, 0)]
        ids = {series.id for series in others}
        self.assertEqual(len(others), len(ids))
        self.assertNotIn(base.id, ids)

    def test_attributes_keep_values_as_data(self):
        value = "x' OR '1'='1"
        series = mapping.Series('t_rating', None, 'cpu', point(
            {'p': value}, {'p': ''}), 3600, 1, 0)
        self.assertEqual(value, series.attributes[
            mapping.column(mapping.GROUPBY, 'p')])
        self.assertEqual('', series.attributes[
            mapping.column(mapping.METADATA, 'p')])
        self.assertNotIn('ck_scope', series.attributes)
        self.assertNotIn('ck_desc', series.attributes)

    def test_typed_values_keep_their_kind(self):
        """A value not a str is its string form plus a kind column."""
        values = {'s': '3', 'i': 3, 'f': 3.0, 'b': True, 'n': None}
        series = mapping.Series('t_rating', None, 'cpu', point(
            values, {'m': 0.5}), 3600, 1, 0)
        attributes = series.attributes
        for key, value in values.items():
            self.assertEqual(str(value), attributes[
                mapping.column(mapping.GROUPBY, key)])
            back = mapping.value_of(attributes, key)
            self.assertEqual((type(value), value), (type(back), back))
        self.assertNotIn(mapping.column('gt', 's'), attributes)
        self.assertEqual('f', attributes[mapping.column('mt', 'm')])
        self.assertIn(('gt', 'i'), series.keys)
        self.assertNotIn(('gt', 's'), series.keys)
        self.assertEqual('', mapping.value_of(attributes, 'absent'))
        ids = {mapping.Series('t_rating', None, 'cpu', point(
            {'k': value}), 3600, 1, 0).id for value in (1, 1.0, True, '1')}
        self.assertEqual(4, len(ids))

    def test_label_items_tell_equal_values_apart(self):
        """1, 1.0 and True give other cache keys; str items stay."""
        self.assertEqual((('a', 'x'),), mapping.label_items({'a': 'x'}))
        keys = {mapping.label_items({'a': v}) for v in (1, 1.0, True)}
        self.assertEqual(3, len(keys))

    def test_check_label_refuses_what_gnocchi_cannot_keep(self):
        mapping.check_label('x' * 255, 'dataframes', 'label value')
        for bad in ('x' * 256, 'nul\x00', '\ud800', 3):
            self.assertRaises(exceptions.InvalidQuery, mapping.check_label,
                              bad, 'dataframes', 'label value')


class PackTest(testtools.TestCase):

    def test_packs_per_type_key_value_period_month_and_part(self):
        """Points of one type and project_id value share a pack."""
        cases = [point({'project_id': 'p'}),
                 point({'project_id': 7}),
                 point({}, {'project_id': 'm'}),
                 point({'project_id': None}, {'project_id': 'm'}),
                 point({}, {'x': 'y'})]
        ids = set()
        for case in cases:
            pack = mapping.Pack.of_point('t_pack', 'cpu', case, 3600, 5)
            self.assertEqual(pack.id, mapping.Pack.of_point(
                't_pack', 'cpu', case, 3600.0, 5.0).id)
            self.assertEqual(pack.id, pack.attributes['ck_pack'])
            self.assertEqual(0, pack.attributes['ck_part'])
            ids.add(pack.id)
            self.assertEqual(
                query.group_value('cpu', case, mapping.SUMS_KEY),
                mapping.sums_value(pack.attributes))
        self.assertEqual(len(cases), len(ids))
        first = mapping.Pack.of_point('t_pack', 'cpu', cases[0], 3600, 5)
        for other in (mapping.Pack.of_point('t_pack', 'ram', cases[0], 3600,
                                            5),
                      mapping.Pack.of_point('t_pack', 'cpu', cases[0], 60, 5),
                      mapping.Pack.of_point('t_pack', 'cpu', cases[0], 3600,
                                            6),
                      mapping.Pack.of_point('u_pack', 'cpu', cases[0], 3600,
                                            5),
                      first.part(1)):
            self.assertNotIn(other.id, ids)
        self.assertEqual(1, first.part(1).attributes['ck_part'])
        self.assertEqual(first.part(1).id, first.part(1).part(1).id)
        self.assertEqual(first.id, first.part(1).part(0).id)

    def test_offsets_fit_the_frame_and_the_day(self):
        self.assertEqual(3600, mapping.capacity(3600))
        self.assertEqual(60, mapping.capacity(60))
        # NOTE: 3 * offset + 2 stays within the day's 86,400 seconds.
        self.assertEqual(28800, mapping.capacity(86400))
        self.assertLess(3 * (mapping.capacity(86400) - 1) + 2, 86400)

    def test_entry_ids_claim_one_offset_of_one_pack(self):
        ids = {mapping.entry_id(rtype, pack, offset)
               for rtype in ('a_rating', 'b_rating')
               for pack in ('p1', 'p2') for offset in (0, 1)}
        self.assertEqual(8, len(ids))
        self.assertNotIn(mapping.epoch_id('a_label'), ids)

    def test_which_totals_the_sums_answer(self):
        def usable(**kwargs):
            return mapping.sums_usable(query.validate_total(**kwargs))

        self.assertTrue(usable())
        self.assertTrue(usable(groupby=['type', 'project_id', 'time-d'],
                               filters={'project_id': 'p', 'type': 'c'},
                               custom_fields='count(qty) AS n, '
                                             'avg(price) AS a'))
        self.assertFalse(usable(groupby=['id']))
        self.assertFalse(usable(filters={'id': 'r'}))
        self.assertFalse(usable(custom_fields='max(qty) AS m'))
        self.assertTrue(mapping.pack_level(query.validate_total(
            groupby=['id'], filters={'project_id': 'p'})))
        self.assertFalse(mapping.pack_level(query.validate_total(
            filters={'id': 'r'})))

    def test_pack_search(self):
        q = query.validate_total(
            begin=builders.T0, end=builders.T0 + builders.HOUR,
            filters={'project_id': "x' OR '1'='1"}, metric_types=['cpu'])
        self.assertEqual({'and': [
            mapping.live_condition(),
            {'>=': {'ck_month': 2021 * 12 + 2}},
            {'<=': {'ck_month': 2021 * 12 + 2}},
            {'in': {'ck_type': ['cpu']}},
            {'in': {'ck_key': ["x' OR '1'='1"]}}]},
            mapping.pack_search_for(q))
        self.assertIn({'in': {'ck_pack': ['a', 'b']}}, mapping.pack_search_for(
            q, {'b', 'a'})['and'])


class SearchTest(testtools.TestCase):

    def test_split_search_covers_every_pack_once(self):
        search = {'and': [mapping.live_condition()]}
        parts = mapping.split_search(search, 4)
        self.assertEqual(4, len(parts))
        edge = '40000000-0000-0000-0000-000000000000'
        self.assertEqual({'>=': {'id': edge}}, parts[1]['and'][1])
        ids = ['%08x-0000-0000-0000-000000000000' % (n * 2 ** 26)
               for n in range(64)] + ['ffffffff-ffff-ffff-ffff-ffffffffffff']

        def matches(part, value):
            for condition in part['and'][1:]:
                (op, bound), = condition.items()
                edge = bound['id']
                if (op == '>=' and value < edge) or (
                        op == '<' and value >= edge):
                    return False
            return True

        for value in ids:
            self.assertEqual(1, sum(matches(part, value) for part in parts),
                             value)
        self.assertEqual([search], mapping.split_search(search, 1))
        self.assertEqual(
            [{'in': {'id': ['a', 'b']}}, {'in': {'id': ['c', 'd']}},
             {'in': {'id': ['e']}}],
            mapping.split_search({'in': {'id': list('abcde')}}, 3))
        self.assertEqual([{'in': {'id': ['a']}}],
                         mapping.split_search({'in': {'id': ['a']}}, 4))

    def test_filter_values_are_data(self):
        value = 'nobody\' OR "project_id"<>\''
        g_col = mapping.column(mapping.GROUPBY, 'project_id')
        m_col = mapping.column(mapping.METADATA, 'project_id')
        q = query.validate_retrieve(
            begin=builders.T0, end=builders.T0 + builders.HOUR,
            filters={'project_id': value})
        search = mapping.search_for(q, {g_col, m_col})
        self.assertIn({'or': [{'in': {g_col: [value]}}, {'and': [
            {'=': {g_col: None}}, {'in': {m_col: [value]}}]}]},
            search['and'])
        self.assertIn({'>=': {'ck_month': 2021 * 12 + 2}}, search['and'])
        self.assertIn({'<=': {'ck_month': 2021 * 12 + 2}}, search['and'])

    def test_filter_on_unknown_key_matches_nothing(self):
        q = query.validate_retrieve(filters={'never': 'x'})
        self.assertIsNone(mapping.search_for(q, set()))

    def test_metadata_only_key(self):
        m_col = mapping.column(mapping.METADATA, 'az')
        q = query.validate_delete(filters={'az': ['a', 'b']})
        self.assertEqual({'and': [{'in': {m_col: ['a', 'b']}}]},
                         mapping.search_for(q, {m_col}))


class BucketTest(testtools.TestCase):

    def bucket(self, count, qty, qty_min, qty_max):
        return buckets.Bucket(builders.T0, count, qty, qty_min, qty_max,
                              qty, qty_min, qty_max)

    def test_uniform_bucket_gives_its_point(self):
        bucket = self.bucket(3, 0.30000000000000004, 0.1, 0.1)
        self.assertEqual((D('0.1'), D('0.1')),
                         buckets.uniform_point(bucket, 'r'))

    def test_bucket_of_one_point_is_its_sums(self):
        bucket = buckets.Bucket(builders.T0, 1, 0.1, None, None, 2.5, None,
                                None)
        self.assertEqual((D('0.1'), D('2.5')),
                         buckets.uniform_point(bucket, 'r'))
        several = bucket._replace(count=2, qty=0.2, price=5.0)
        error = self.assertRaises(exceptions.StorageError,
                                  buckets.uniform_point, several, 'r')
        self.assertIn('were not read', str(error))

    def test_mixed_bucket_is_refused(self):
        self.assertRaises(exceptions.StorageError, buckets.uniform_point,
                          self.bucket(2, 3.0, 1.0, 2.0), 'r')

    def test_refill_keeps_count_sum_and_extremes(self):
        qty, _ = buckets.refill(self.bucket(4, 10.0, 1.0, 5.0))
        self.assertEqual([1.0, 5.0, 2.0, 2.0], qty)
        self.assertEqual([1.0, 2.0], buckets.refill(
            self.bucket(2, 3.0, 1.0, 2.0))[0])
        self.assertEqual([7.0] * 3, buckets.refill(
            self.bucket(3, 21.0, 7.0, 7.0))[0])

    def test_to_units_is_exact_on_the_float(self):
        self.assertEqual(100000000000, buckets.to_units(0.1))
        self.assertEqual(-10 ** 27, buckets.to_units(-1e15))

    def test_answer_decoding(self):
        stamp = '2021-03-10T00:00:00+00:00'
        answer = {'measures': {'r1': {
            'qty': {'count': [[stamp, 900.0, 2.0]],
                    'min': [[stamp, 900.0, 1.5]],
                    'max': [[stamp, 900.0, 1.5]]},
            'price': {'min': [[stamp, 900.0, 3.0]],
                      'max': [[stamp, 900.0, 3.0]]}}}}
        found = buckets.buckets_by_resource(answer)
        self.assertEqual(1, len(found['r1']))
        bucket = found['r1'][0]
        self.assertEqual((builders.T0, 2), (bucket.start, bucket.count))
        self.assertEqual((D('1.5'), D('3.0')),
                         buckets.uniform_point(bucket, 'r1'))


class SettledTest(testtools.TestCase):
    """Buckets with half their sums are read again, never used (no server).

    metricd processes a pack's qty and price apart; the storage's reads
    and refreshes are replaced by a script.
    """

    START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

    def bucket(self, price):
        return buckets.Bucket(self.START, 1, 1.5, 1.5, 1.5, price, price,
                              price)

    def store(self, answers, pending=0):
        store = gnocchi_backend.GnocchiStorage.__new__(
            gnocchi_backend.GnocchiStorage)
        self.refreshed = []
        self.searches = []
        store._refresh = lambda client, rid: self.refreshed.append(rid)
        store._run = lambda function, calls: [function(*c) for c in calls]

        def packs(client, search, operations, granularity):
            self.searches.append(search)
            return {}, answers.pop(0)

        store._packs = packs
        self.useFixture(fixtures.MonkeyPatch('time.sleep', lambda s: None))
        self.client = Client(pending)
        return store

    def test_half_buckets_are_refreshed_and_read_again(self):
        store = self.store([{'r1': [self.bucket(None)],
                             'r2': [self.bucket(3.0)]},
                            {'r1': [self.bucket(2.0)]}])
        self.assertEqual({'r1': [self.bucket(2.0)], 'r2': [self.bucket(3.0)]},
                         store._settled(self.client, ['r1', 'r2']))
        self.assertEqual(['r1'], self.refreshed)
        self.assertEqual([{'in': {'id': ['r1', 'r2']}},
                          {'in': {'id': ['r1']}}], self.searches)

    def test_whole_buckets_are_read_once(self):
        store = self.store([{'r2': [self.bucket(3.0)]}])
        self.assertEqual({'r2': [self.bucket(3.0)]},
                         store._settled(self.client, ['r2']))
        self.assertEqual([], self.refreshed)

    def test_pending_measures_are_processed_first(self):
        store = self.store([{'r2': [self.bucket(3.0)]}], pending=4)
        store._settled(self.client, ['r2'])
        self.assertEqual(['r2'], self.refreshed)

    def test_gives_up_with_a_storage_error(self):
        half = {'r1': [self.bucket(None)]}
        store = self.store([half] * gnocchi_backend.SETTLE_ATTEMPTS)
        error = self.assertRaises(exceptions.StorageError, store._settled,
                                  self.client, ['r1'])
        self.assertIn('did not process the measures of 1 packs',
                      str(error))
        self.assertEqual(['r1'] * (gnocchi_backend.SETTLE_ATTEMPTS - 1),
                         self.refreshed)


class Client:
    """What _settled() asks of a client."""

    location = 'http://gnocchi.invalid'

    def __init__(self, pending):
        self.pending = pending

    def pending_measures(self):
        return self.pending


class AddAttributesTest(testtools.TestCase):
    """Columns added while other writers add the same (no server)."""

    def setUp(self):
        super().setUp()
        if not client_mod._import_library():
            self.skipTest('gnocchiclient is not installed')
        self.store = gnocchi_backend.GnocchiStorage.__new__(
            gnocchi_backend.GnocchiStorage)

    def client(self, failures, present):
        """A client whose first updates fail, the type holding present."""
        sent = []

        def update(name, patch):
            sent.append([op['path'] for op in patch])
            if failures:
                raise failures.pop(0)

        api = types.SimpleNamespace(
            resource_type=types.SimpleNamespace(
                update=update,
                get=lambda name: {'attributes': dict.fromkeys(present)}),
            resource=types.SimpleNamespace(search=lambda **kw: []))
        client = types.SimpleNamespace(
            api=api, call=lambda f, *a, **k: f(*a, **k),
            read=lambda f, *a, **k: f(*a, **k))
        return client, sent

    def server_error(self):
        error = exceptions.StorageError('Gnocchi failed')
        error.__cause__ = client_mod.gnocchi_exc.ClientException(500)
        return error

    def test_duplicate_column_is_a_lost_race(self):
        """A 500 while another adds a column: what is missing goes again."""
        client, sent = self.client([self.server_error()], ['g_a'])
        self.store._add_attributes(client, 't', {'g_a': {}, 'g_b': {}})
        self.assertEqual([['/attributes/g_a', '/attributes/g_b'],
                          ['/attributes/g_b']], sent)

    def test_nothing_left_is_done(self):
        client, sent = self.client([client_mod.gnocchi_exc.BadRequest(400)],
                                   ['g_a'])
        self.store._add_attributes(client, 't', {'g_a': {}})
        self.assertEqual(1, len(sent))

    def test_other_failures_are_raised(self):
        down = exceptions.BackendUnavailable('gnocchi', 'x', 'down')
        client, sent = self.client([down], [])
        self.assertRaises(exceptions.BackendUnavailable,
                          self.store._add_attributes, client, 't',
                          {'g_a': {}})
        failures = [self.server_error()
                    for _ in range(gnocchi_backend.ADD_ATTEMPTS)]
        client, sent = self.client(failures, [])
        self.assertRaises(exceptions.StorageError,
                          self.store._add_attributes, client, 't',
                          {'g_a': {}})
        self.assertEqual(gnocchi_backend.ADD_ATTEMPTS, len(sent))
