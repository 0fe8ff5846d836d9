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
"""The Gnocchi backend: rated series packed along the time axis of metrics.

The mapping is described in :mod:`cloudkitty.storage.v2.gnocchi.mapping`:
the series of one metric type, ``project_id`` value, frame length and
month share a *pack* resource, each series at its own offset (seconds)
inside every frame; the pack's ``qty`` and ``price`` metrics get one
measure per point, on an archive policy of two granularities (one second:
a series' points in a frame; the collection period: the whole pack's sums
per frame), and its ``day`` metric the exact daily sums of each series.
The series' labels are kept as catalogue resources without metrics, whose
ids claim the offsets (:mod:`cloudkitty.storage.v2.gnocchi.catalogue`).

total() whose filters and groupby name only the type, ``project_id`` and
time reads the packs' frame sums (one request). Other totals read the
matching series from the catalogue, then the daily sums of their packs
(or, for groupings by frame, unaligned windows, minima and maxima, their
points). retrieve() pages by the packs' frame counts and reads the points
of the page's packs and frames alone. delete() removes whole packs and
rewrites those that keep points outside the window.

Declared limits (:class:`GnocchiFeatures`): sums are float64 (within 1e-9
of the exact ones), values keep at most 255 characters, a push is not atomic
and writers must not push into a month while it is partly deleted.
"""

import concurrent.futures
import datetime
import math
import re
import threading
import time
import uuid

from oslo_log import log

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage import v2
from cloudkitty.storage.v2.gnocchi import buckets as buckets_mod
from cloudkitty.storage.v2.gnocchi import catalogue as catalogue_mod
from cloudkitty.storage.v2.gnocchi import client as client_mod
from cloudkitty.storage.v2.gnocchi import mapping
from cloudkitty.storage.v2.gnocchi import options
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query as query_mod

LOG = log.getLogger(__name__)

#: How far back a resource's buckets may arrive late: a resource holds one
#: month of frame starts, so the archive keeps (and accepts) 32 days.
TIMESPAN = datetime.timedelta(days=32)
#: A delete's rewrite left pending longer than this (seconds) was cut
#: short by a crash; the next init() or delete() finishes or undoes it.
PENDING_TIMEOUT = 300
#: Most measures sent in one batch request.
MAX_BATCH_MEASURES = 20000
#: Fewest measures a batch request is cut down to, to send several at once.
MIN_BATCH_MEASURES = 2000
#: Series a store instance remembers the identity of, across pushes.
MAX_SERIES_MEMO = 200000
#: Attempts to add attributes to a resource type other writers change too.
ADD_ATTEMPTS = 5
#: Reads of buckets that lack a metric's sums before a delete gives up.
SETTLE_ATTEMPTS = 5
#: What total() reads of every pack at the frame granularity.
FRAME_OPERATIONS = '(metric (qty sum) (price sum) (qty count))'
#: What total() reads of the daily sums of the series.
DAY_OPERATIONS = '(metric (day sum))'
#: The fine granularity of the archive policy: one bucket per series.
FINE = 1
_NS = 10 ** 9
_DAY = datetime.timedelta(days=1)
_TIMEDELTA_RE = re.compile(
    r'^(?:(\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$')


def parse_timedelta(text):
    """Parse Gnocchi's ``[D day[s], ]H:MM:SS[.f]`` durations (or seconds)."""
    if isinstance(text, (int, float)):
        return datetime.timedelta(seconds=text)
    match = _TIMEDELTA_RE.match(text)
    if not match:
        raise exceptions.StorageError('Unexpected Gnocchi duration %r'
                                      % (text,))
    days, hours, minutes, seconds = match.groups()
    return datetime.timedelta(days=int(days or 0), hours=int(hours),
                              minutes=int(minutes), seconds=float(seconds))


class GnocchiFeatures(v2.Features):
    """What the Gnocchi backend can do."""

    #: Gnocchi sums float64 values.
    exact_decimal = False
    groupby_time = True
    custom_fields = True
    delete_with_filters = True
    #: metricd processes measures after the API accepted them.
    eventually_consistent = True
    #: A push is several batch requests; Gnocchi has no transactions
    #: (each request holds the sums of its own points).
    atomic_push = False
    #: A delete that rewrites a pack would lose what another process
    #: pushes into it meanwhile.
    concurrent_writers = False
    #: Gnocchi string attributes hold at most 255 characters.
    max_value_length = mapping.MAX_VALUE_LENGTH
    #: Gnocchi has nowhere to keep a receipt that is written with the data.
    idempotent_push = False
    #: Measures are float64: beyond 10**15 not even whole units are kept.
    max_magnitude = 10 ** 15
    #: float64 sums of up to a few million points stay within 1e-9.
    float_tolerance = v2.Features.float_tolerance


class GnocchiStorage(v2.BaseStorage):
    """Rated data in Gnocchi (see the module docstring)."""

    name = 'gnocchi'
    features = GnocchiFeatures

    def __init__(self, conf=None, period=None):
        super().__init__(conf=conf, period=period)
        options.register_opts(self.conf)
        self._client = None
        self._catalogue = None
        self._series_memo = {}
        self._lock = threading.Lock()
        #: The attribute names the rating resource type has.
        self._columns = None
        #: ``{column: (role, key)}`` of the label keys known.
        self._labels = {}

    # Plumbing ----------------------------------------------------------

    @property
    def _group(self):
        return self.conf.storage_gnocchi

    @property
    def rating_type(self):
        """The resource type of the rated series."""
        return self._group.resource_type_prefix + 'rating'

    @property
    def label_type(self):
        """The resource type that records the label keys."""
        return self._group.resource_type_prefix + 'label'

    @property
    def pack_type(self):
        """The resource type of the packs (the points and their sums)."""
        return self._group.resource_type_prefix + 'pack'

    @property
    def catalogue(self):
        """The :class:`catalogue.Catalogue` of this store's series."""
        with self._lock:
            if self._catalogue is None:
                self._catalogue = catalogue_mod.Catalogue(
                    self.rating_type, self.label_type,
                    self._group.granularity, self._claims)
            return self._catalogue

    def _claims(self, function, calls):
        # NOTE: a claim is one small request that Gnocchi's API spends
        # most of its time on in the database: twice the push's workers
        # keep both API processes busy.
        self._run(function, calls, workers=2 * self._group.write_workers)

    @property
    def _granularity_ns(self):
        return self._group.granularity * 10 ** 9

    def _api(self):
        with self._lock:
            if self._client is None:
                self._client = client_mod.Client(self.conf)
            return self._client

    def wait_until_visible(self, timeout=600.0):
        """Return once metricd processed every measure Gnocchi holds.

        Gnocchi only tells how many measures wait in all, so this waits
        for other writers' measures too.
        """
        self._api().wait_processed(timeout)

    def close(self):
        """Forget the client and the remembered locations."""
        with self._lock:
            self._client = None
            self._catalogue = None

    def check_initialised(self):
        """Raise unless init() made the resource types; create nothing.

        :raises cloudkitty.storage.exceptions.NotInitialised: when the
            catalogue, the label or the pack resource type is missing.
        """
        client = self._api()
        for name in (self.rating_type, self.label_type, self.pack_type):
            try:
                client.read(client.api.resource_type.get, name)
            except client_mod.gnocchi_exc.NotFound:
                raise exceptions.NotInitialised(
                    self.name, client.location,
                    'no resource type %s' % name) from None

    def store_identity(self):
        """Return what names this store: the endpoint and type prefix.

        :rtype: tuple
        """
        return ('gnocchi', self._api().location,
                self._group.resource_type_prefix)

    def _pool(self, workers=None):
        return concurrent.futures.ThreadPoolExecutor(
            max_workers=workers or self._group.write_workers)

    # init ----------------------------------------------------------------

    def init(self):
        """Create the archive policy and resource types when missing.

        Idempotent; an existing archive policy that does not fit (another
        granularity, a missing aggregation method, a shorter back window)
        is an error rather than a silent mismatch, and so is a store
        written in the series layout of before 2026-12-06 (one resource
        and two metrics per series), which this layout cannot read.
        """
        client = self._api()
        self._check_layout(client)
        self._ensure_archive_policy(client)
        self._ensure_type(client, self.rating_type, mapping.FIXED_ATTRIBUTES)
        self._ensure_type(client, self.label_type, mapping.LABEL_ATTRIBUTES)
        self._ensure_type(client, self.pack_type, mapping.PACK_ATTRIBUTES)
        self.catalogue.ensure_epoch(client)
        self._load_schema(client)
        self._recover(client)

    def _check_layout(self, client):
        """Refuse a store of the series layout (its series hold metrics)."""
        try:
            rating = client.read(client.api.resource_type.get,
                                 self.rating_type)
        except client_mod.gnocchi_exc.NotFound:
            return
        if 'ck_offset' in rating['attributes']:
            return
        if client.read(client.api.resource.search,
                       resource_type=self.rating_type, limit=1):
            raise exceptions.StorageError(
                'Gnocchi at %s holds a store of resource type %s in the '
                'series layout (one resource per series), which this '
                'version cannot read: copy it with an earlier version into '
                'another backend, or choose another resource_type_prefix'
                % (client.location, self.rating_type))

    def _policy_definition(self):
        granularity = self._group.granularity
        back_window = math.ceil(TIMESPAN.total_seconds() / granularity)
        timespan = '%ds' % TIMESPAN.total_seconds()
        definition = [{'granularity': '%ds' % FINE, 'timespan': timespan}]
        if granularity != FINE:
            definition.append({'granularity': '%ds' % granularity,
                               'timespan': timespan})
        return {'name': self._group.archive_policy_name,
                'back_window': back_window,
                'aggregation_methods': list(mapping.AGGREGATION_METHODS),
                'definition': definition}

    def _ensure_archive_policy(self, client):
        wanted = self._policy_definition()
        name = wanted['name']
        try:
            policy = client.read(client.api.archive_policy.get, name)
        except client_mod.gnocchi_exc.NotFound:
            if not self._group.manage_archive_policy:
                raise exceptions.StorageError(
                    'Gnocchi archive policy %r does not exist and '
                    '[storage_gnocchi] manage_archive_policy is off' % name)
            try:
                client.call(client.api.archive_policy.create, wanted)
            except client_mod.gnocchi_exc.Conflict:
                pass
            policy = client.read(client.api.archive_policy.get, name)
        self._check_policy(policy, wanted)

    def _check_policy(self, policy, wanted):
        problems = []
        have = {parse_timedelta(d['granularity']): parse_timedelta(
            d['timespan']) for d in policy['definition']}
        for seconds in sorted({FINE, self._group.granularity}):
            granularity = datetime.timedelta(seconds=seconds)
            if granularity not in have:
                problems.append('no granularity of %s' % granularity)
            elif have[granularity] < TIMESPAN:
                problems.append('a timespan below %s at %s'
                                % (TIMESPAN, granularity))
        methods = set(policy.get('aggregation_methods', ()))
        missing = set(mapping.AGGREGATION_METHODS) - methods
        if missing:
            problems.append('no %s aggregation' % ', '.join(sorted(missing)))
        if policy.get('back_window', 0) < wanted['back_window']:
            problems.append('a back window below %d' % wanted['back_window'])
        if problems:
            raise exceptions.StorageError(
                'Gnocchi archive policy %r does not fit this backend: %s'
                % (policy['name'], '; '.join(problems)))

    def _ensure_type(self, client, name, attributes):
        """Create or complete a resource type; return whether it was new."""
        try:
            current = client.read(client.api.resource_type.get, name)
        except client_mod.gnocchi_exc.NotFound:
            try:
                client.call(client.api.resource_type.create,
                            {'name': name, 'attributes': attributes})
                return True
            except client_mod.gnocchi_exc.Conflict:
                current = client.read(client.api.resource_type.get, name)
        missing = sorted(set(attributes) - set(current['attributes']))
        if missing:
            self._add_attributes(client, name, {
                attr: attributes[attr] for attr in missing})
        return False

    def _add_attributes(self, client, name, attributes):
        """Add attributes to a resource type, racing other writers.

        Another process may add some of them first: Gnocchi then refuses
        the change (HTTP 400), or, when both add one column at the same
        moment, fails it (PostgreSQL's duplicate column, HTTP 500; seen
        with four instances pushing a new label key at once). Either way
        the change was not applied: what is still missing is added again,
        :data:`ADD_ATTEMPTS` times at most.
        """
        patch = [{'op': 'add', 'path': '/attributes/%s' % attr,
                  'value': spec} for attr, spec in attributes.items()]
        for attempt in range(1, ADD_ATTEMPTS + 1):
            try:
                client.call(client.api.resource_type.update, name, patch)
                break
            except (client_mod.gnocchi_exc.BadRequest,
                    exceptions.StorageError) as exc:
                if attempt == ADD_ATTEMPTS or not _lost_a_race(exc):
                    raise
                current = client.read(client.api.resource_type.get, name)
                patch = [op for op in patch
                         if op['path'].rsplit('/', 1)[1]
                         not in current['attributes']]
                if not patch:
                    break
                LOG.info('Gnocchi: another writer changed resource type %s '
                         'meanwhile; adding %d attributes again',
                         name, len(patch))
        # NOTE: Gnocchi's API process rebuilds its classes of a resource
        # type on the first request after the type changed, without a
        # lock (ResourceClassMapper.get_classes): one small search makes
        # it do so alone, before a push or total() sends requests at once.
        client.read(client.api.resource.search, resource_type=name,
                    limit=1)

    def _load_schema(self, client):
        try:
            rating = client.read(client.api.resource_type.get,
                                 self.rating_type)
        except client_mod.gnocchi_exc.NotFound as exc:
            raise exceptions.StorageError(
                'Gnocchi at %s has no resource type %s: run init() first'
                % (client.location, self.rating_type)) from exc
        labels = {}
        epoch_id = mapping.epoch_id(self.label_type)
        for resource in client.search_all(self.label_type, None):
            if resource['id'] == epoch_id:
                continue
            key = resource['name']
            for role in (mapping.GROUPBY, mapping.METADATA):
                labels[mapping.column(role, key)] = (role, key)
        self._columns = frozenset(rating['attributes'])
        self._labels = labels

    def _schema(self):
        client = self._api()
        if self._columns is None:
            self._load_schema(client)
        return client

    # push ----------------------------------------------------------------

    def push(self, dataframes, scope_id=None, idempotency_key=None):
        """Store rated data (see :meth:`BaseStorage.push`).

        Every frame must start on a multiple of ``[storage_gnocchi]
        granularity``; every label, unit, type and description must hold
        at most 255 characters. Both are checked before anything is sent.
        Not atomic: a failed push may have stored part of its points.
        """
        frames = query_mod.validate_dataframes(dataframes)
        query_mod.validate_idempotency_key(idempotency_key, self)
        if scope_id is not None:
            mapping.check_label(scope_id, 'scope_id', 'scope_id')
        planned, wanted, keys = self._encode(frames, scope_id)
        if not planned:
            return
        client = self._schema()
        self._ensure_labels(client, keys)
        locations = self.catalogue.locate(client, wanted)
        packs = {}
        for series_id, start_ns, qty, price in planned:
            location = locations[series_id]
            entry = packs.get(location.pack.id)
            if entry is None:
                entry = packs[location.pack.id] = (location.pack, [])
            entry[1].append((start_ns, location.offset, float(qty),
                             float(price), money.to_units(qty),
                             money.to_units(price)))
        self._write(client, packs)

    def _encode(self, frames, scope_id):
        """Check every point and find its series and pack.

        :returns: ``([(series id, start_ns, qty, price)], {series id:
            (Series, Pack)}, {(role, key), ...})``, money as Decimals.
        """
        granularity_ns = self._granularity_ns
        bound = self.features.max_magnitude
        checked = set()
        series_cache = {}
        slots = {}
        planned = []
        wanted = {}
        keys = set()
        # NOTE: a rating service pushes the same series every period: their
        # identities (a JSON text and a UUID each) are computed once.
        memo = self._series_memo
        fresh = {}
        for frame in frames:
            start_ns = mapping.to_ns(frame.start)
            if start_ns % granularity_ns:
                raise exceptions.InvalidQuery(
                    'dataframes', 'the frame starting at %s does not start '
                    'on a multiple of the granularity (%d s)'
                    % (frame.start.isoformat(), self._group.granularity),
                    frame)
            period = (mapping.to_ns(frame.end) - start_ns) / 10 ** 9
            if period == int(period):
                period = int(period)
            month = mapping.month_number(frame.start)
            for type_, point in frame.iterpoints():
                qty = money.check(point.qty, 'qty', bound)
                price = money.check(point.price, 'price', bound)
                self._check_labels(type_, point, checked)
                labels = (type_, point.unit, point.description,
                          mapping.label_items(point.groupby),
                          mapping.label_items(point.metadata))
                values = slots.setdefault((labels, start_ns, period), [])
                money_pair = (qty, price)
                try:
                    slot = values.index(money_pair)
                except ValueError:
                    slot = len(values)
                    values.append(money_pair)
                cache_key = (scope_id, labels, period, month, slot)
                series_id = series_cache.get(cache_key)
                if series_id is None:
                    known = memo.get(cache_key)
                    if known is None:
                        series = mapping.Series(
                            self.rating_type, scope_id, type_, point,
                            period, month, slot)
                        known = (series, mapping.Pack.of_point(
                            self.pack_type, type_, point, period, month))
                        fresh[cache_key] = known
                    series_id = series_cache[cache_key] = known[0].id
                    wanted[series_id] = known
                    keys.update(known[0].keys)
                planned.append((series_id, start_ns, qty, price))
        if len(memo) + len(fresh) > MAX_SERIES_MEMO:
            memo.clear()
        memo.update(fresh)
        return planned, wanted, keys

    @staticmethod
    def _check_labels(type_, point, checked):
        texts = [(type_, 'metric type'), (point.unit, 'unit')]
        if point.description is not None:
            texts.append((point.description, 'description'))
        for labels in (point.groupby, point.metadata):
            for key, value in labels.items():
                texts.append((key, 'label key'))
                # NOTE: Gnocchi keeps the string form; its length counts.
                texts.append((query_mod.label_text(value), 'label value'))
        for text, what in texts:
            if text not in checked:
                mapping.check_label(text, 'dataframes', what)
                checked.add(text)

    def _ensure_labels(self, client, keys):
        missing = {(role, key) for role, key in keys
                   if mapping.column(role, key) not in self._columns}
        if not missing:
            return
        self._load_schema(client)
        known = {key for _, key in self._labels.values()}
        for _, key in sorted(missing):
            if key not in known:
                client.create_resource(self.label_type, {
                    'id': mapping.label_id(self.label_type, key),
                    'name': key})
                known.add(key)
        text = {'type': 'string', 'required': False,
                'max_length': mapping.MAX_VALUE_LENGTH}
        columns = {mapping.column(role, key): text
                   if role in (mapping.GROUPBY, mapping.METADATA)
                   else mapping.KIND_ATTRIBUTE
                   for role, key in missing}
        columns = {name: spec for name, spec in columns.items()
                   if name not in self._columns}
        if columns:
            self._add_attributes(client, self.rating_type, columns)
        self._load_schema(client)

    def _pack_measures(self, points):
        """The batch body of one pack: its measures per metric.

        :param points: ``[(start_ns, offset, qty, price, qty units, price
            units)]``: money as floats (the measures) and as exact ints of
            ``10**-12`` (the daily sums).
        :returns: ``{metric: {'archive_policy_name': ..., 'measures':
            [...]}}``.
        """
        granularity_ns = self._granularity_ns
        first = mapping.CLOCK.reserve(len(points))
        qty, price = [], []
        days = {}
        for index, (start_ns, offset, qty_value, price_value, qty_units,
                    price_units) in enumerate(points):
            stamp = mapping.iso_ns(start_ns + offset * _NS
                                   + (first + index) % _NS)
            qty.append({'timestamp': stamp, 'value': qty_value})
            price.append({'timestamp': stamp, 'value': price_value})
            sums = days.get((start_ns, offset))
            if sums is None:
                sums = days[(start_ns, offset)] = [0, 0, 0]
            sums[0] += qty_units
            sums[1] += price_units
            sums[2] += 1
        # NOTE: the day's buckets get one measure per frame and batch; the
        # frame's index in the day picks a range of nanoseconds of its own,
        # so that measures of two frames never share a timestamp (one
        # would replace the other).
        frames_per_day = -(-mapping.DAY_SECONDS * _NS // granularity_ns)
        share = _NS // frames_per_day
        day_ns = mapping.DAY_SECONDS * _NS
        first = mapping.CLOCK.reserve(len(days))
        day = []
        for index, ((start_ns, offset), (qty_units, price_units,
                                         count)) in enumerate(
                sorted(days.items())):
            day_start = start_ns - start_ns % day_ns
            base = (day_start + mapping.DAY_FIELDS * offset * _NS
                    + (start_ns - day_start) // granularity_ns * share
                    + (first + index) % share)
            for field, value in enumerate((
                    float(money.from_units(qty_units)),
                    float(money.from_units(price_units)), count)):
                day.append({'timestamp': mapping.iso_ns(base + field * _NS),
                            'value': value})
        policy = self._group.archive_policy_name
        return {name: {'archive_policy_name': policy, 'measures': measures}
                for name, measures in ((mapping.QTY, qty),
                                       (mapping.PRICE, price),
                                       (mapping.DAY, day))}

    def _batches(self, packs):
        """Split the points of packs into batch bodies.

        A push's measures are shared out over at least ``write_workers``
        batches when there are enough (Gnocchi parses a batch on one core;
        its API runs several processes), at most
        :data:`MAX_BATCH_MEASURES` each.

        :param packs: ``{pack resource id: [point, ...]}`` (see
            :meth:`_pack_measures`).
        :returns: ``[{pack resource id: body}]``: each batch holds the
            daily sums of its own points, so that Gnocchi, which stores or
            refuses a batch whole, never keeps sums without their points.
        """
        # NOTE: a point is two measures and at most three of daily sums.
        weight = 5
        total = weight * sum(len(points) for points in packs.values())
        budget = max(MIN_BATCH_MEASURES, min(
            MAX_BATCH_MEASURES, -(-total // self._group.write_workers)))
        chunk = max(1, budget // weight)
        batches = []
        body = {}
        measures = 0
        for resource_id, points in packs.items():
            for first in range(0, len(points), chunk):
                part = points[first:first + chunk]
                if body and (resource_id in body
                             or len(body) >= self._group.batch_size
                             or measures + weight * len(part) > budget):
                    batches.append(body)
                    body = {}
                    measures = 0
                body[resource_id] = self._pack_measures(part)
                measures += weight * len(part)
        if body:
            batches.append(body)
        return batches

    def _write(self, client, packs):
        """Send the measures of a push, creating the packs it names first.

        :param packs: ``{pack id: (Pack, [point, ...])}``.
        """
        batches = self._batches({pack_id: points for pack_id, (_, points)
                                 in packs.items()})

        def create_one(pack_id):
            client.create_resource(self.pack_type, dict(
                packs[pack_id][0].attributes, id=pack_id))

        def create(ids):
            # NOTE: Gnocchi creates one resource per request (about 10 ms
            # of its time each): a few at a time use both its threads and
            # the time each request spends on the wire.
            self._run(create_one, [(pack_id,) for pack_id in ids])

        self._run(client.push_measures, [
            (batch, self.pack_type, create) for batch in batches])

    def _run(self, function, calls, workers=None):
        """Run ``function(*args)`` for each args, a few at a time.

        :param workers: at most this many at once (default
            ``write_workers``).
        """
        if not calls:
            return
        if len(calls) == 1:
            function(*calls[0])
            return
        with self._pool(workers) as pool:
            futures = [pool.submit(function, *args) for args in calls]
            for future in futures:
                future.result()

    # reads -----------------------------------------------------------------

    def _frame_bounds(self, query):
        """The bounds of a read of frame buckets (or days) of a window."""
        bounds = {}
        if query.begin is not None:
            bounds['start'] = query.begin.isoformat()
        if query.end is not None:
            bounds['stop'] = query.end.isoformat()
        return bounds

    def _point_bounds(self, query):
        """The bounds of a read of one-second buckets of a window.

        A frame starting before the end holds offsets past it: the stop
        is the end rounded up to a frame start, and the caller keeps the
        buckets whose frame starts in the window.
        """
        bounds = {}
        if query.begin is not None:
            bounds['start'] = query.begin.isoformat()
        if query.end is not None:
            granularity_ns = self._granularity_ns
            stop = -(-mapping.to_ns(query.end) // granularity_ns)
            bounds['stop'] = mapping.iso_ns(stop * granularity_ns)
        return bounds

    def _packs(self, client, search, operations, granularity, **bounds):
        """Read the buckets of the packs a search matches.

        :returns: ``({resource_id: pack}, {resource_id: [Bucket]})``;
            Gnocchi's ``details`` gives the packs with the measures, in
            the same request.
        """
        answer = self._aggregates(client, operations, search,
                                  granularity=granularity, **bounds)
        packs = {pack['id']: pack for pack in answer.get('references', ())}
        return packs, buckets_mod.buckets_by_resource(answer)

    def _aggregates(self, client, operations, search, **kwargs):
        """A dynamic aggregate over the packs of a search, with details.

        Sent as ``write_workers`` requests at once over disjoint packs
        (:func:`mapping.split_search`): Gnocchi's API serves each request
        on one core, and reading hundreds of packs takes it about a
        second. Measured at 100k points on a loaded machine, the frame
        sums of 246 packs: 1.4-2.2 s in one request, 0.7-0.9 s in four.

        :returns: ``{'references': [...], 'measures': {...}}``.
        """
        answers = []

        def fetch(part):
            answers.append(client.aggregates(
                operations, self.pack_type, part, details=True, **kwargs))

        self._run(fetch, [(part,) for part in mapping.split_search(
            search, self._group.write_workers)])
        merged = {'references': [], 'measures': {}}
        for answer in answers:
            merged['references'].extend(answer.get('references', ()))
            merged['measures'].update(answer.get('measures', {}))
        return merged

    def _place(self, bucket):
        """Return ``(frame start, offset)`` of a one-second bucket."""
        offset = int(bucket.start.timestamp()) % self._group.granularity
        return bucket.start - datetime.timedelta(seconds=offset), offset

    def _entries(self, client, search):
        """The catalogue entries a search matches.

        Searched in :attr:`write_workers` ranges of offsets at once: the
        cost is Gnocchi formatting the resources, which its API
        processes share.

        :returns: ``{(pack id, offset): entry}``.
        """
        workers = self._group.write_workers
        capacity = mapping.capacity(self._group.granularity)
        bounds = [capacity * index // workers for index in range(workers)]
        bounds.append(capacity)
        answers = []

        def search_range(low, high):
            answers.append(client.search_all(self.rating_type, {'and': [
                search, {'>=': {'ck_offset': low}},
                {'<': {'ck_offset': high}}]}))

        self._run(search_range, [(low, high) for low, high
                                 in zip(bounds, bounds[1:]) if low < high])
        return catalogue_mod.by_place(entry for answer in answers
                                      for entry in answer)

    def _entries_at(self, client, places):
        """The catalogue entries of ``{(pack id, offset)}``, by their ids."""
        return catalogue_mod.by_place(catalogue_mod.search_in(
            client, self._run, self.rating_type, 'id',
            {mapping.entry_id(self.rating_type, pack_id, offset)
             for pack_id, offset in places}))

    def _selection(self, client, query):
        """What a query selects: the packs' search and the series.

        :returns: ``(pack search, {(pack id, offset): entry} or None)``:
            None when the filters select whole packs; ``(None, None)``
            when nothing can match.
        """
        if mapping.pack_level(query):
            return mapping.pack_search_for(query), None
        search = mapping.search_for(query, self._columns)
        if search is None:
            return None, None
        entries = self._entries(client, search)
        if not entries:
            return None, None
        return mapping.pack_search_for(
            query, {pack_id for pack_id, _ in entries}), entries

    def _template(self, client, entry):
        """Return ``(type, (unit, groupby, metadata, description))``."""
        groupby = {}
        metadata = {}
        for attr, value in entry.items():
            if value is None or attr[:2] not in ('g_', 'm_'):
                continue
            label = self._labels.get(attr)
            if label is None:
                self._load_schema(client)
                label = self._labels.get(attr)
                if label is None:
                    raise exceptions.StorageError(
                        'Gnocchi attribute %s of %s names no known label'
                        % (attr, self.rating_type))
            role, key = label
            kind = entry.get(mapping.column(mapping.KIND_OF[role], key))
            (groupby if role == mapping.GROUPBY else metadata)[key] = \
                query_mod.decode_label(kind, value)
        return entry['ck_type'], (entry['ck_unit'], groupby, metadata,
                                  entry.get('ck_desc'))

    def _point_cells(self, packs, found, query, entries):
        """Place one-second buckets: ``[(key, count, resource id, bucket)]``.

        ``key`` is ``(frame start, type, pack id, resource id, offset)``,
        the order of retrieve(); only buckets of frames in the window, and
        of the series of ``entries`` unless it is None, are kept.
        """
        cells = []
        for resource_id, buckets in found.items():
            pack = packs[resource_id]
            for bucket in buckets:
                if not bucket.count:
                    continue
                start, offset = self._place(bucket)
                if not mapping.in_window(query, start):
                    continue
                if entries is not None and (pack['ck_pack'],
                                            offset) not in entries:
                    continue
                cells.append(((start, pack['ck_type'], pack['ck_pack'],
                               resource_id, offset), bucket))
        cells.sort(key=lambda cell: cell[0])
        return cells

    def _rows(self, client, packs, cells, query, entries):
        """Turn placed buckets into retrieve() rows, copies expanded.

        Buckets of several points are read again with their extremes
        (:data:`buckets_mod.EXTREME_OPERATIONS`), which tell their points.

        :returns: ``[(key + (copy,), end, DataPoint)]`` in order.
        """
        several = sorted({key[3] for key, bucket in cells
                          if bucket.count > 1})
        extremes = {}
        if several:
            starts = [key[0] for key, _ in cells]
            granularity = datetime.timedelta(
                seconds=self._group.granularity)
            _, found = self._packs(
                client, {'in': {'id': several}},
                buckets_mod.EXTREME_OPERATIONS, FINE,
                start=min(starts).isoformat(),
                stop=(max(starts) + granularity).isoformat())
            extremes = {(resource_id, bucket.start): bucket
                        for resource_id, buckets in found.items()
                        for bucket in buckets}
        needed = {(key[2], key[4]) for key, _ in cells}
        if entries is None or not needed <= set(entries):
            entries = self._entries_at(client, needed)
        gone = self._deleted_meanwhile(client, {
            key[3]: (key[2], key[4]) for key, _ in cells
            if (key[2], key[4]) not in entries})
        templates = {}
        rows = []
        for key, bucket in cells:
            place = (key[2], key[4])
            entry = entries.get(place)
            if entry is None:
                if key[3] in gone:
                    continue
                raise exceptions.StorageError(
                    'Gnocchi pack %s holds points at offset %d, which no '
                    'series of the catalogue names' % place)
            template = templates.get(place)
            if template is None:
                template = templates[place] = self._template(client, entry)
            type_, (unit, groupby, metadata, description) = template
            if bucket.count > 1:
                bucket = extremes.get((key[3], bucket.start), bucket)
            qty, price = buckets_mod.uniform_point(bucket, key[3])
            point = dataframe.DataPoint(unit, qty, price, groupby, metadata,
                                        description)
            end = key[0] + datetime.timedelta(seconds=entry['ck_period'])
            for copy in range(bucket.count):
                rows.append((key + (copy,), end, point))
        return rows

    def _deleted_meanwhile(self, client, unnamed):
        """Which packs with unnamed offsets a delete removed since read.

        A delete removes a pack, then the catalogue entries of its
        series: a read between the two finds points no entry names. Their
        pack is gone; their points are deleted, not lost.

        :param unnamed: ``{resource id: (pack id, offset)}``.
        :returns: the resource ids that no longer exist.
        """
        gone = set()
        for resource_id in sorted(unnamed):
            try:
                client.read(client.api.resource.get, self.pack_type,
                            resource_id)
            except client_mod.gnocchi_exc.NotFound:
                gone.add(resource_id)
        return gone

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Return rated points (see :meth:`BaseStorage.retrieve`).

        Points come by frame start, type, pack and offset. A page whose
        filters name only the type and ``project_id`` is placed by the
        packs' frame counts, then reads the one-second buckets of its own
        packs and frames; with other filters, the matching series' buckets
        are counted one by one first (see :meth:`_page_rows`).
        """
        query = query_mod.validate_retrieve(begin, end, filters,
                                            metric_types, offset, limit,
                                            paginate)
        client = self._schema()
        search, entries = self._selection(client, query)
        if search is None:
            return query_mod.build_retrieve(0, [])
        if query.paginate:
            total, rows = self._page_rows(client, query, search, entries)
        else:
            packs, found = self._packs(client, search,
                                       buckets_mod.POINT_OPERATIONS, FINE,
                                       **self._point_bounds(query))
            rows = self._rows(client, packs, self._point_cells(
                packs, found, query, entries), query, entries)
            total = len(rows)
        return query_mod.build_retrieve(total, [
            (key[0], end_, key[1], point) for key, end_, point in rows])

    def _page_rows(self, client, query, search, entries):
        """The rows of a query's page, and how many points match in all.

        Counts place every point: per pack and frame when whole packs
        match (``entries`` None), else per series and frame. Then only
        the buckets of the packs and frames of the page are read.
        """
        if entries is None:
            packs, counted = self._packs(
                client, search, buckets_mod.COUNT_OPERATIONS,
                self._group.granularity, **self._frame_bounds(query))
            cells = sorted(
                ((bucket.start, packs[resource_id]['ck_type'],
                  packs[resource_id]['ck_pack'], resource_id),
                 bucket.count)
                for resource_id, buckets in counted.items()
                for bucket in buckets
                if bucket.count and mapping.in_window(query, bucket.start))
        else:
            packs, counted = self._packs(
                client, search, buckets_mod.COUNT_OPERATIONS, FINE,
                **self._point_bounds(query))
            cells = [(key, bucket.count) for key, bucket in
                     self._point_cells(packs, counted, query, entries)]
        first, stop = query.offset, query.offset + query.limit
        total = sum(count for _, count in cells)
        chosen = []
        position = 0
        base = None
        for key, count in cells:
            if position >= stop:
                break
            if position + count > first:
                if base is None:
                    base = position
                chosen.append(key)
            position += count
        if not chosen:
            return total, []
        ids = sorted({key[3] for key in chosen})
        granularity = datetime.timedelta(seconds=self._group.granularity)
        packs, found = self._packs(
            client, {'in': {'id': ids}}, buckets_mod.POINT_OPERATIONS, FINE,
            start=min(key[0] for key in chosen).isoformat(),
            stop=(max(key[0] for key in chosen) + granularity).isoformat())
        wanted = set(chosen)
        width = len(chosen[0])
        cells = [cell for cell in self._point_cells(packs, found, query,
                                                    entries)
                 if cell[0][:width] in wanted]
        rows = self._rows(client, packs, cells, query, entries)
        return total, rows[first - base:stop - base]

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        """Sum qty and price, grouped (see :meth:`BaseStorage.total`).

        When the filters and groupby name only the type, ``project_id``
        and time, and the fields are sums, counts or averages, the packs'
        frame sums answer (one request). Else the matching series are read
        from the catalogue, then their daily sums (no ``time`` grouping,
        a window of whole days, sums, counts and averages only) or their
        points. Float sums are added here, exactly.
        """
        query = query_mod.validate_total(groupby, begin, end, metric_types,
                                         filters, custom_fields, offset,
                                         limit, paginate)
        client = self._schema()
        if mapping.sums_usable(query):
            return query_mod.build_total(query, self._frame_partials(
                client, query))
        search = mapping.search_for(query, self._columns)
        if search is None:
            return query_mod.build_total(query, [])
        read = (self._day_sums if self._days_usable(query)
                else self._point_sums)
        if mapping.pack_level(query):
            # NOTE: the filters name whole packs: their sums and the
            # catalogue entries that label them are read at once.
            answers = {}

            def fetch(name, function, *args):
                answers[name] = function(*args)

            self._run(fetch, [
                ('entries', self._entries, client, search),
                ('sums', read, client, query,
                 mapping.pack_search_for(query))])
            entries, sums = answers['entries'], answers['sums']
        else:
            entries = self._entries(client, search)
            if not entries:
                return query_mod.build_total(query, [])
            sums = read(client, query, mapping.pack_search_for(
                query, {pack_id for pack_id, _ in entries}))
        partials = []
        for place, start, end, aggregate in sums:
            entry = entries.get(place)
            if entry is not None:
                partials.append(query_mod.Partial(
                    self._keys(query, entry), start, end, aggregate))
        return query_mod.build_total(query, partials)

    def _frame_partials(self, client, query):
        """Partial groups from the packs' sums, one per pack and frame."""
        packs, found = self._packs(
            client, mapping.pack_search_for(query), FRAME_OPERATIONS,
            self._group.granularity, **self._frame_bounds(query))
        partials = []
        for resource_id, buckets in found.items():
            pack = packs[resource_id]
            keys = tuple(pack['ck_type'] if entry == 'type'
                         else mapping.sums_value(pack)
                         for entry in query.key_groupby)
            period = datetime.timedelta(seconds=pack['ck_period'])
            for bucket in buckets:
                if not bucket.count or not mapping.in_window(query,
                                                             bucket.start):
                    continue
                partials.append(query_mod.Partial(
                    keys, bucket.start, bucket.start + period,
                    query_mod.Aggregate.from_units(
                        bucket.count, buckets_mod.to_units(bucket.qty or 0),
                        buckets_mod.to_units(bucket.price or 0))))
        return partials

    @staticmethod
    def _days_usable(query):
        """Tell whether the daily sums can answer a label total()."""
        if query.time_groupby == 'time':
            return False
        if not all(field.func in ('sum', 'count', 'avg')
                   for field in query.fields):
            return False
        return all(bound is None or bound == bound.replace(
            hour=0, minute=0, second=0, microsecond=0)
            for bound in (query.begin, query.end))

    @staticmethod
    def _keys(query, entry):
        return tuple(entry['ck_type'] if key == 'type'
                     else mapping.value_of(entry, key)
                     for key in query.key_groupby)

    def _day_sums(self, client, query, search):
        """The series' daily sums (``day`` metric) of the packs of a search.

        :returns: ``[((pack id, offset), day, next day, Aggregate)]``.
        """
        answer = self._aggregates(client, DAY_OPERATIONS, search,
                                  granularity=FINE,
                                  **self._frame_bounds(query))
        packs = {pack['id']: pack for pack in answer.get('references', ())}
        sums = {}
        for resource_id, metrics in answer.get('measures', {}).items():
            pack_id = packs[resource_id]['ck_pack']
            for stamp, _, value in metrics.get(mapping.DAY, {}).get(
                    'sum', ()):
                moment = buckets_mod.to_datetime(stamp)
                second = int(moment.timestamp()) % mapping.DAY_SECONDS
                offset, field = divmod(second, mapping.DAY_FIELDS)
                day = moment - datetime.timedelta(seconds=second)
                cell = sums.setdefault(((pack_id, offset), day), [0, 0, 0])
                cell[field] += (int(round(value)) if field == 2
                                else buckets_mod.to_units(value))
        return [(place, day, day + _DAY,
                 query_mod.Aggregate.from_units(count, qty, price))
                for (place, day), (qty, price, count) in sums.items()
                if count]

    def _point_sums(self, client, query, search):
        """The sums of every one-second bucket of the packs of a search.

        :returns: ``[((pack id, offset), frame start, frame end,
            Aggregate)]``, with the extremes the query's fields need.
        """
        operations = ['(qty count)', '(qty sum)', '(price sum)']
        extremes = sorted({(field.func, field.field)
                           for field in query.fields
                           if field.func in ('min', 'max')})
        operations.extend('(%s %s)' % (field, func)
                          for func, field in extremes)
        packs, found = self._packs(
            client, search, '(metric %s)' % ' '.join(operations), FINE,
            **self._point_bounds(query))
        sums = []
        for (start, _, pack_id, resource_id, offset), bucket in \
                self._point_cells(packs, found, query, None):
            picked = {'min': {}, 'max': {}}
            for func, field in extremes:
                value = getattr(bucket, '%s_%s' % (field, func))
                picked[func][field] = buckets_mod.to_decimal(value)
            period = datetime.timedelta(
                seconds=packs[resource_id]['ck_period'])
            sums.append(((pack_id, offset), start, start + period,
                         query_mod.Aggregate.from_units(
                             bucket.count, buckets_mod.to_units(bucket.qty),
                             buckets_mod.to_units(bucket.price),
                             picked['min'], picked['max'])))
        return sums

    # delete --------------------------------------------------------------

    def delete(self, begin=None, end=None, filters=None):
        """Delete the points of a window (see :meth:`BaseStorage.delete`).

        Packs whose month lies inside the window are deleted whole (when
        the filters name only the type and ``project_id``), with their
        catalogue entries; the others are read (after metricd processed
        them), and the ones that keep points are rewritten without the
        deleted ones: their remaining buckets and daily sums go to a new
        pack, marked pending until the old one is gone, so that a crash
        never shows a point twice. Returns the number of points deleted,
        as processed by metricd.
        """
        query = query_mod.validate_delete(begin, end, filters)
        client = self._schema()
        self._recover(client)
        search, entries = self._selection(client, query)
        if search is None:
            return 0
        packs = {pack['id']: pack
                 for pack in client.search_all(self.pack_type, search)}
        if not packs:
            return 0
        whole, partial = [], []
        for resource_id, pack in packs.items():
            month_begin, month_end = mapping.month_range(pack['ck_month'])
            inside = ((query.begin is None or query.begin <= month_begin)
                      and (query.end is None or month_end <= query.end))
            (whole if inside and entries is None
             else partial).append(resource_id)
        deleted = 0
        if whole:
            _, counted = self._packs(
                client, {'in': {'id': whole}}, buckets_mod.COUNT_OPERATIONS,
                self._group.granularity)
            deleted += sum(bucket.count for buckets in counted.values()
                           for bucket in buckets)
        emptied = list(whole)
        rewrites = []
        if partial:
            found = self._settled(client, partial)
            for resource_id in partial:
                pack = packs[resource_id]
                gone, kept = [], []
                for bucket in found.get(resource_id, ()):
                    start, offset = self._place(bucket)
                    dropped = mapping.in_window(query, start) and (
                        entries is None
                        or (pack['ck_pack'], offset) in entries)
                    (gone if dropped else kept).append(bucket)
                if not gone:
                    continue
                deleted += sum(bucket.count for bucket in gone)
                if kept:
                    rewrites.append((client, pack, kept))
                else:
                    emptied.append(resource_id)
        self._run(self._rewrite, rewrites)
        if emptied:
            client.delete_resources(emptied)
        self._forget(client, [packs[resource_id] for resource_id in whole])
        return deleted

    def _forget(self, client, gone):
        """Delete the catalogue entries of packs deleted whole.

        Then the epoch changes (:meth:`catalogue.Catalogue.forgotten`), so
        that no store instance pushes to an offset it remembers from
        before.
        """
        ids = [entry['id'] for entry in catalogue_mod.search_in(
            client, self._run, self.rating_type, 'ck_pack',
            {pack['ck_pack'] for pack in gone})]
        if ids:
            client.delete_resources(ids)
            self.catalogue.forgotten(client)

    def _settled(self, client, ids):
        """Every one-second bucket of packs, once metricd processed them.

        Pending measures are processed first (``refresh``); metricd may
        still process a pack's ``qty`` and ``price`` apart, and a read
        between the two gives buckets with a count and no price sum. Such
        packs are refreshed and read again, :data:`SETTLE_ATTEMPTS` times
        at most, so that nothing is rewritten from half a bucket.

        :returns: ``{resource_id: [Bucket]}``.
        :raises exceptions.StorageError: some still lack a metric's sums.
        """
        found = {}
        unsettled = sorted(ids)
        if client.pending_measures():
            self._run(self._refresh, [(client, rid) for rid in unsettled])
        for attempt in range(SETTLE_ATTEMPTS):
            if attempt:
                LOG.info('Gnocchi: %d packs have buckets without their '
                         'price or qty sums; processing them (attempt %d)',
                         len(unsettled), attempt + 1)
                time.sleep(0.2 * attempt)
                self._run(self._refresh,
                          [(client, rid) for rid in unsettled])
            _, again = self._packs(client, {'in': {'id': unsettled}},
                                   buckets_mod.BUCKET_OPERATIONS, FINE)
            found.update(again)
            unsettled = _unsettled(again)
            if not unsettled:
                return found
        raise exceptions.StorageError(
            'Gnocchi at %s did not process the measures of %d packs in '
            'time (%s...)' % (client.location, len(unsettled), unsettled[0]))

    def _refresh(self, client, resource_id):
        """Make metricd process a pack's pending measures now."""
        for metric in (mapping.QTY, mapping.PRICE, mapping.DAY):
            try:
                client.read(client.api.metric.get_measures, metric,
                            resource_id=resource_id, refresh=True,
                            aggregation='count',
                            granularity=self._group.granularity)
            except client_mod.gnocchi_exc.NotFound:
                pass

    def _rewrite(self, client, pack, kept):
        """Move a pack's kept buckets to a new pack, then drop it.

        The new pack gets the kept points (each bucket's values, see
        :func:`buckets_mod.refill`) and daily sums rebuilt from them.
        """
        attributes = {name: value for name, value in pack.items()
                      if name in mapping.PACK_ATTRIBUTES
                      and value is not None}
        new_id = str(uuid.uuid4())
        attributes.update(id=new_id, ck_pending=pack['id'])
        client.create_resource(self.pack_type, attributes)
        points = []
        for bucket in kept:
            start, offset = self._place(bucket)
            start_ns = mapping.to_ns(start)
            for qty, price in zip(*buckets_mod.refill(bucket)):
                points.append((start_ns, offset, qty, price,
                               buckets_mod.to_units(qty),
                               buckets_mod.to_units(price)))
        for batch in self._batches({new_id: points}):
            client.push_measures(batch, self.pack_type, lambda ids: None)
        # NOTE: processed before it replaces the old pack, so that no read
        # after the delete misses a kept point.
        self._refresh(client, new_id)
        client.delete_resources([pack['id']])
        # NOTE: clearing the mark twice is clearing it once: repeatable.
        client.read(client.api.resource.update, self.pack_type, new_id,
                    {'ck_pending': ''})

    def _recover(self, client, min_age=PENDING_TIMEOUT):
        """Finish or undo the rewrites a crashed delete left pending.

        :param min_age: seconds a rewrite must have been pending: younger
            ones may belong to a delete still running.
        """
        stale = (datetime.datetime.now(datetime.timezone.utc)
                 - datetime.timedelta(seconds=min_age))
        # NOTE: Gnocchi's '!=' matches NULL too: ask for "not live".
        pending = client.search_all(self.pack_type, {'and': [
            {'not': mapping.live_condition()},
            {'<': {'revision_start': stale.isoformat()}}]})
        for pack in pending:
            source = pack['ck_pending']
            if not source:
                continue
            try:
                client.read(client.api.resource.get, self.pack_type, source)
            except client_mod.gnocchi_exc.NotFound:
                LOG.warning('Finishing the rewrite of Gnocchi pack %s '
                            'into %s', source, pack['id'])
                client.read(client.api.resource.update, self.pack_type,
                            pack['id'], {'ck_pending': ''})
            else:
                LOG.warning('Undoing the rewrite of Gnocchi pack %s '
                            'into %s', source, pack['id'])
                client.delete_resources([pack['id']])


def _lost_a_race(exc):
    """Tell whether a failed resource type change may be another's doing.

    A 400 (the attribute exists by now) or a 500 (both added it at once);
    an unreachable server, or another error, is not.
    """
    if isinstance(exc, client_mod.gnocchi_exc.BadRequest):
        return True
    if isinstance(exc, exceptions.BackendUnavailable):
        return False
    return getattr(exc.__cause__, 'code', None) == client_mod.RETRY_STATUS


def _unsettled(found):
    """The resources of ``{resource_id: [Bucket]}`` with half a bucket."""
    return sorted(resource_id for resource_id, buckets in found.items()
                  if any(bucket.qty is None or bucket.price is None
                         for bucket in buckets))
