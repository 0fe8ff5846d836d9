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
"""Unit tests of the Gnocchi catalogue: offset claims, lookups, memory.

The server is a dict of resources behind a fake client that counts the
requests the catalogue sends; several Catalogue instances on one fake
server play several processes. Nothing is sent.
"""

import collections
import types

import fixtures
import testtools

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.gnocchi import catalogue
from cloudkitty.storage.v2.gnocchi import client as client_mod
from cloudkitty.storage.v2.gnocchi import mapping
from cloudkitty.tests import fixtures as builders

# NOTE: gnocchiclient is imported by the first Client, not with the module.
HAVE_CLIENT = client_mod._import_library()
RATING = 'ck_rating'
LABEL = 'ck_label'
PACK = 'ck_pack'
MONTH = mapping.month_number(builders.T0)


def run(function, calls):
    return [function(*args) for args in calls]


def series_of(project_id, host='h'):
    """Return ``(Series, Pack)`` of a cpu point of ``project_id``."""
    point = builders.make_point(project_id, groupby={'host': host})
    return (mapping.Series(RATING, None, 'cpu', point, 3600, MONTH, 0),
            mapping.Pack.of_point(PACK, 'cpu', point, 3600, MONTH))


def wanted_of(*pairs):
    return {series.id: (series, pack) for series, pack in pairs}


class FakeClient:
    """The client calls the catalogue makes, on an in-memory server."""

    def __init__(self):
        self.resources = {}
        self.calls = collections.Counter()
        self.chunks = []
        #: Entry ids deleted by the next GET of them (which then 404s).
        self.vanishing = set()
        self.api = types.SimpleNamespace(resource=types.SimpleNamespace(
            get=self._get, update=self._update))

    def read(self, function, *args, **kwargs):
        return function(*args, **kwargs)

    def claim_resource(self, resource_type, attributes):
        self.calls['claim'] += 1
        key = (resource_type, attributes['id'])
        if key in self.resources:
            return False
        self.resources[key] = dict(attributes)
        return True

    def create_resource(self, resource_type, attributes):
        self.calls['create'] += 1
        self.resources.setdefault((resource_type, attributes['id']),
                                  dict(attributes))

    def search_all(self, resource_type, search):
        self.calls['search'] += 1
        ids = search['in']['ck_series']
        self.chunks.append(list(ids))
        return [dict(attributes)
                for (type_, _), attributes in sorted(self.resources.items())
                if type_ == resource_type and attributes['ck_series'] in ids]

    def _get(self, resource_type, resource_id):
        self.calls['get %s' % resource_type] += 1
        key = (resource_type, resource_id)
        if resource_id in self.vanishing:
            self.vanishing.discard(resource_id)
            self.resources.pop(key, None)
        if key not in self.resources:
            raise client_mod.gnocchi_exc.NotFound(404, 'no ' + resource_id)
        return dict(self.resources[key])

    def _update(self, resource_type, resource_id, patch):
        self.calls['update'] += 1
        key = (resource_type, resource_id)
        if key not in self.resources:
            raise client_mod.gnocchi_exc.NotFound(404, 'no ' + resource_id)
        self.resources[key].update(patch)

    def entries(self):
        return {key[1]: value for key, value in self.resources.items()
                if key[0] == RATING}


class FixedStart(catalogue.Catalogue):
    """A catalogue whose series are all first tried at ``start``."""

    start = 3

    def first_offset(self, series):
        return self.start


class CatalogueTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        if not HAVE_CLIENT:
            self.skipTest('gnocchiclient is not installed')
        self.client = FakeClient()

    def catalogue(self, granularity=3600, cls=catalogue.Catalogue):
        return cls(RATING, LABEL, granularity, run)


class ClaimTest(CatalogueTestCase):
    """Claiming offsets: probing, conflicts, full packs and parts."""

    def test_new_series_is_claimed_at_its_first_offset(self):
        cat = self.catalogue()
        series, pack = series_of('p1')
        location = cat.claim(self.client, series, pack)
        offset = cat.first_offset(series)
        self.assertEqual(catalogue.Location(pack, offset), location)
        self.assertLess(offset, 3600)
        entry = self.client.resources[
            (RATING, mapping.entry_id(RATING, pack.id, offset))]
        self.assertEqual((series.id, pack.id, offset),
                         (entry['ck_series'], entry['ck_pack'],
                          entry['ck_offset']))
        for name, value in series.attributes.items():
            self.assertEqual(value, entry[name], name)
        self.assertEqual(1, self.client.calls['claim'])

    def test_colliding_series_probe_the_next_offsets(self):
        cat = self.catalogue(granularity=10, cls=FixedStart)
        (a, pack), (b, _), (c, _) = (series_of('p', host)
                                     for host in 'abc')
        self.assertEqual(3, cat.claim(self.client, a, pack).offset)
        self.client.calls.clear()
        self.assertEqual(4, cat.claim(self.client, b, pack).offset)
        self.assertEqual(2, self.client.calls['claim'])
        self.assertEqual(1, self.client.calls['get ck_rating'])
        # The probe wraps around after the last offset.
        cat.start = 9
        self.assertEqual(9, cat.claim(self.client, c, pack).offset)
        d, _ = series_of('p', 'd')
        self.assertEqual(0, cat.claim(self.client, d, pack).offset)
        self.assertEqual(4, len(self.client.entries()))

    def test_offset_claimed_by_the_same_series_elsewhere_is_kept(self):
        series, pack = series_of('p1')
        first = self.catalogue().claim(self.client, series, pack)
        self.client.calls.clear()
        again = self.catalogue().claim(self.client, series, pack)
        self.assertEqual(first, again)
        self.assertEqual(1, self.client.calls['claim'])
        self.assertEqual(1, self.client.calls['get ck_rating'])
        self.assertEqual(1, len(self.client.entries()))

    def test_full_pack_continues_in_the_next_part(self):
        cat = self.catalogue(granularity=2)
        self.assertEqual(2, cat.capacity)
        pairs = [series_of('p', host) for host in 'abc']
        pack = pairs[0][1]
        locations = [cat.claim(self.client, series, pack)
                     for series, _ in pairs]
        self.assertEqual([pack.id] * 2, [loc.pack.id for loc in locations[:2]])
        self.assertEqual({0, 1}, {loc.offset for loc in locations[:2]})
        third = locations[2]
        self.assertNotEqual(pack.id, third.pack.id)
        self.assertEqual(pack.part(1).id, third.pack.id)
        self.assertEqual(1, third.pack.attributes['ck_part'])
        entry = self.client.entries()[
            mapping.entry_id(RATING, third.pack.id, third.offset)]
        self.assertEqual(pairs[2][0].id, entry['ck_series'])
        # Another process finds the part-1 entry by lookup.
        found = self.catalogue(granularity=2).lookup(
            self.client, wanted_of(pairs[2]))
        self.assertEqual(third, found[pairs[2][0].id])
        self.assertEqual(1, found[pairs[2][0].id].pack.attributes['ck_part'])

    def test_every_part_full_raises(self):
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.gnocchi.catalogue.MAX_PARTS', 2))
        cat = self.catalogue(granularity=2)
        pairs = [series_of('p', host) for host in 'abcde']
        pack = pairs[0][1]
        for series, _ in pairs[:4]:
            cat.claim(self.client, series, pack)
        self.assertEqual(4, len(self.client.entries()))
        self.client.calls.clear()
        error = self.assertRaises(exceptions.StorageError, cat.claim,
                                  self.client, pairs[4][0], pack)
        self.assertIn('cpu', str(error))
        self.assertEqual(4, self.client.calls['claim'])
        self.assertEqual(4, len(self.client.entries()))

    def test_entry_deleted_before_the_read_is_claimed_again(self):
        cat = self.catalogue()
        series, pack = series_of('p1')
        offset = cat.first_offset(series)
        entry_id = mapping.entry_id(RATING, pack.id, offset)
        self.client.resources[(RATING, entry_id)] = {
            'id': entry_id, 'ck_series': 'someone else'}
        self.client.vanishing.add(entry_id)
        location = cat.claim(self.client, series, pack)
        self.assertEqual(catalogue.Location(pack, offset), location)
        self.assertEqual(series.id, self.client.entries()[entry_id][
            'ck_series'])
        self.assertEqual(2, self.client.calls['claim'])
        self.assertEqual(1, self.client.calls['get ck_rating'])


class LocateTest(CatalogueTestCase):
    """What locate() remembers, and when the epoch makes it forget."""

    def test_remembered_until_the_epoch_changes(self):
        cat, other = self.catalogue(), self.catalogue()
        cat.ensure_epoch(self.client)
        wanted = wanted_of(series_of('p1'), series_of('p2'))
        first = cat.locate(self.client, wanted)
        self.assertEqual(set(wanted), set(first))
        self.assertEqual(2, self.client.calls['claim'])
        self.assertEqual(1, self.client.calls['search'])
        for forget in (None, cat, other):
            if forget is not None:
                forget.forgotten(self.client)
            self.client.calls.clear()
            self.assertEqual(first, cat.locate(self.client, wanted))
            self.assertEqual(0 if forget is None else 1,
                             self.client.calls['search'], forget)
            self.assertEqual(0, self.client.calls['claim'])
            self.assertEqual(1, self.client.calls['get ck_label'])
        self.assertEqual(2, len(self.client.entries()))

    def test_forgotten_without_marker_creates_it(self):
        cat = self.catalogue()
        self.assertIsNone(cat.epoch(self.client))
        cat.forgotten(self.client)
        self.assertIsNotNone(cat.epoch(self.client))
        wanted = wanted_of(series_of('p1'))
        cat.locate(self.client, wanted)
        self.client.calls.clear()
        cat.locate(self.client, wanted)
        self.assertEqual(0, self.client.calls['search'])

    def test_nothing_remembered_without_epoch(self):
        cat = self.catalogue()
        wanted = wanted_of(series_of('p1'))
        first = cat.locate(self.client, wanted)
        self.client.calls.clear()
        self.assertEqual(first, cat.locate(self.client, wanted))
        self.assertEqual(1, self.client.calls['search'])
        self.assertEqual(0, self.client.calls['claim'])

    def test_lookup_searches_in_chunks(self):
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.gnocchi.catalogue.LOOKUP_CHUNK', 2))
        cat = self.catalogue()
        pairs = [series_of('p%d' % number) for number in range(5)]
        claimed = cat.locate(self.client, wanted_of(*pairs[:4]))
        self.client.calls.clear()
        self.client.chunks = []
        wanted = wanted_of(*pairs)
        found = cat.lookup(self.client, wanted)
        self.assertEqual(claimed, found)
        self.assertEqual(3, self.client.calls['search'])
        self.assertEqual([2, 2, 1], [len(chunk)
                                     for chunk in self.client.chunks])
        self.assertEqual(sorted(wanted),
                         sum(self.client.chunks, []))
        self.assertEqual(0, self.client.calls['claim'])

    def test_lookup_prefers_the_lowest_part_and_offset(self):
        cat = self.catalogue()
        series, pack = series_of('p1')
        for part, offset in ((1, 0), (0, 7), (0, 5)):
            holder = pack.part(part) if part else pack
            cat._claim_offset(self.client, series, holder, offset)
        found = cat.lookup(self.client, wanted_of((series, pack)))
        self.assertEqual(catalogue.Location(pack, 5), found[series.id])

    def test_answers_of_an_older_epoch_are_not_remembered(self):
        hooks = []

        def run_then_hook(function, calls):
            results = run(function, calls)
            while hooks:
                hooks.pop()()
            return results

        cat = catalogue.Catalogue(RATING, LABEL, 3600, run_then_hook)
        other = self.catalogue()
        other.ensure_epoch(self.client)
        pair_a, pair_b = series_of('pa'), series_of('pb')
        other.locate(self.client, wanted_of(pair_a))
        [entry_id] = self.client.entries()

        def delete_then_push():
            # A delete removes a's entry while cat is locating a; then
            # cat locates b under the new epoch.
            del self.client.resources[(RATING, entry_id)]
            other.forgotten(self.client)
            cat.locate(self.client, wanted_of(pair_b))

        hooks.append(delete_then_push)
        cat.locate(self.client, wanted_of(pair_a))
        self.client.calls.clear()
        cat.locate(self.client, wanted_of(pair_a))
        self.assertEqual(1, self.client.calls['search'])
        self.assertEqual(1, self.client.calls['claim'])
        self.assertIn(entry_id, self.client.entries())
