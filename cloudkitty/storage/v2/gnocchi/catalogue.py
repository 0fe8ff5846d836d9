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
"""Where each series sits in its pack: offsets claimed in the catalogue.

Every series of a pack needs an offset of its own (see
:mod:`cloudkitty.storage.v2.gnocchi.mapping`), and every process that
pushes the series must find the same one. The catalogue resource of a
series has an id derived from its pack and offset
(:func:`mapping.entry_id`), so creating it *claims* the offset: Gnocchi
accepts one resource of an id, and answers the other claims with a
conflict.

A push first looks its series up (one search by ``ck_series`` per
thousand series). A series not found is claimed by probing: its first
candidate offset derives from its identity, the next ones follow. A
conflict means the offset is taken; reading the resource tells by whom:
the series itself (another process claimed it first, or this claim's
first attempt did before a server error) or another one (try the next
offset). Every process probes the same offsets in the same order, so
they end on the same one. A pack whose offsets are all taken continues
in its next part.

Each store instance remembers the locations it found or claimed, since
an entry never changes: it is created once, and deleted only by a delete
that removed its pack whole. Such a delete then changes the store's
*epoch*, a token kept by a marker resource of the label type
(:func:`mapping.epoch_id`); every push reads it first (one small request)
and forgets what it remembered when it changed, so that it never writes
to an offset whose entry was deleted, or claimed again by another series.
(A delete running *while* another process pushes is outside the
backend's declared ``concurrent_writers``.)
"""

import threading
import uuid

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.gnocchi import client as client_mod
from cloudkitty.storage.v2.gnocchi import mapping

#: Series looked up per search.
LOOKUP_CHUNK = 1000
#: Parts a pack may continue in before a push gives up.
MAX_PARTS = 64
#: Locations a store instance remembers at most (about 200 bytes each).
MAX_KNOWN = 200000


class Location:
    """Where a series sits: its pack (a :class:`mapping.Pack`) and offset."""

    __slots__ = ('pack', 'offset')

    def __init__(self, pack, offset):
        self.pack = pack
        self.offset = offset

    def __eq__(self, other):
        return (isinstance(other, Location) and self.pack.id == other.pack.id
                and self.offset == other.offset)

    def __hash__(self):
        return hash((self.pack.id, self.offset))

    def __repr__(self):
        return 'Location(%s, %d)' % (self.pack.id, self.offset)


class Catalogue:
    """Finds and claims the offsets of series in their packs.

    :param catalogue_type: the ``<prefix>rating`` resource type.
    :param label_type: the ``<prefix>label`` resource type, which holds
        the epoch marker.
    :param granularity: the archive policy's coarse granularity (seconds),
        which bounds the offsets (:func:`mapping.capacity`).
    :param run: ``run(function, [args, ...])`` calls ``function(*args)``
        for each args, a few at a time.
    """

    def __init__(self, catalogue_type, label_type, granularity, run):
        self.catalogue_type = catalogue_type
        self.label_type = label_type
        self.capacity = mapping.capacity(granularity)
        self._run = run
        self._lock = threading.Lock()
        self._known = {}
        self._epoch = None

    @property
    def epoch_id(self):
        """The id of the marker whose name holds the store's epoch."""
        return mapping.epoch_id(self.label_type)

    def epoch(self, client):
        """Return the store's epoch, or None when it has no marker."""
        try:
            marker = client.read(client.api.resource.get, self.label_type,
                                 self.epoch_id)
        except client_mod.gnocchi_exc.NotFound:
            return None
        return marker['name']

    def ensure_epoch(self, client):
        """Create the epoch marker when missing (init())."""
        client.create_resource(self.label_type, {
            'id': self.epoch_id, 'name': _new_epoch()})

    def forgotten(self, client):
        """Change the epoch: catalogue entries were deleted.

        Every store instance forgets the locations it remembered before
        its next push.
        """
        try:
            client.read(client.api.resource.update, self.label_type,
                        self.epoch_id, {'name': _new_epoch()})
        except client_mod.gnocchi_exc.NotFound:
            self.ensure_epoch(client)
        with self._lock:
            self._known.clear()
            self._epoch = None

    def locate(self, client, wanted):
        """Return the location of every series, claiming the new ones.

        What this instance remembers answers first, unless the epoch
        changed since.

        :param wanted: ``{series id: (Series, Pack)}``.
        :returns: ``{series id: Location}``.
        """
        epoch = self.epoch(client)
        with self._lock:
            if epoch is None or epoch != self._epoch:
                self._known.clear()
                self._epoch = epoch
            found = {series_id: self._known[series_id]
                     for series_id in wanted if series_id in self._known}
        if len(found) < len(wanted):
            found.update(self._find(client, {
                series_id: value for series_id, value in wanted.items()
                if series_id not in found}))
        with self._lock:
            if epoch is not None and epoch == self._epoch:
                if len(self._known) + len(found) > MAX_KNOWN:
                    self._known.clear()
                self._known.update(found)
        return found

    def _find(self, client, wanted):
        """Look the series up, then claim those not found."""
        found = self.lookup(client, wanted)
        missing = [(client, series, pack)
                   for series_id, (series, pack) in sorted(wanted.items())
                   if series_id not in found]
        if missing:
            claimed = {}

            def claim(client, series, pack):
                claimed[series.id] = self.claim(client, series, pack)

            self._run(claim, missing)
            found.update(claimed)
        return found

    def lookup(self, client, wanted):
        """Return the locations the catalogue already holds.

        :param wanted: ``{series id: (Series, Pack)}``.
        :returns: ``{series id: Location}`` of those found.
        """
        found = {}
        for entry in search_in(client, self._run, self.catalogue_type,
                               'ck_series', wanted):
            series_id = entry['ck_series']
            pack = wanted[series_id][1]
            location = self._location_of(pack, entry)
            if location is not None:
                # NOTE: two entries of one series (a race lost by a
                # crashed claim's retry cannot make one, but be
                # deterministic anyway): the lowest pack and offset.
                known = found.get(series_id)
                if known is None or _order(location) < _order(known):
                    found[series_id] = location
        return found

    def _location_of(self, pack, entry):
        for part in range(MAX_PARTS):
            candidate = pack.part(part) if part else pack
            if candidate.id == entry['ck_pack']:
                return Location(candidate, int(entry['ck_offset']))
        return None

    def first_offset(self, series):
        """The offset a series is first tried at (from its identity)."""
        return int(series.id.replace('-', '')[:12], 16) % self.capacity

    def claim(self, client, series, pack):
        """Claim an offset for a series, or find the one it holds.

        :returns: its :class:`Location`.
        :raises exceptions.StorageError: every part is full.
        """
        start = self.first_offset(series)
        for part in range(MAX_PARTS):
            candidate = pack.part(part) if part else pack
            for step in range(self.capacity):
                offset = (start + step) % self.capacity
                holder = self._claim_offset(client, series, candidate,
                                            offset)
                if holder == series.id:
                    return Location(candidate, offset)
        raise exceptions.StorageError(
            'Gnocchi: %d parts of %d series each are full for the series '
            'of type %s' % (MAX_PARTS, self.capacity,
                            series.attributes['ck_type']))

    def _claim_offset(self, client, series, pack, offset):
        """Create the entry of an offset; return the series holding it."""
        entry_id = mapping.entry_id(self.catalogue_type, pack.id, offset)
        attributes = dict(series.attributes, id=entry_id,
                          ck_series=series.id, ck_pack=pack.id,
                          ck_offset=offset)
        while True:
            if client.claim_resource(self.catalogue_type, attributes):
                return series.id
            try:
                holder = client.read(client.api.resource.get,
                                     self.catalogue_type, entry_id)
            except client_mod.gnocchi_exc.NotFound:
                # NOTE: deleted between our claim and our read: claim
                # it again.
                continue
            return holder['ck_series']


def search_in(client, run, resource_type, attribute, values):
    """Every resource of a type whose ``attribute`` is among ``values``.

    One search per :data:`LOOKUP_CHUNK` values, a few at once.

    :param run: ``run(function, [args, ...])``, as :class:`Catalogue`'s.
    :returns: a list of resources.
    """
    values = sorted(values)
    answers = []

    def search(chunk):
        answers.append(client.search_all(resource_type,
                                         {'in': {attribute: chunk}}))

    run(search, [(values[first:first + LOOKUP_CHUNK],)
                 for first in range(0, len(values), LOOKUP_CHUNK)])
    return [entry for answer in answers for entry in answer]


def by_place(entries):
    """Catalogue entries by ``(pack id, offset)``."""
    return {(entry['ck_pack'], int(entry['ck_offset'])): entry
            for entry in entries}


def _new_epoch():
    return 'epoch %s' % uuid.uuid4()


def _order(location):
    return (location.pack.attributes['ck_part'], location.offset)
