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
"""The Gnocchi backend: rated series as Gnocchi resources and metrics.

The mapping is described in :mod:`cloudkitty.storage.v2.gnocchi.mapping`:
one resource per series, month and slot, two metrics (``qty``, ``price``)
on an archive policy whose granularity is the collection period, one
measure per point; beside them, one *sums* resource per metric type,
``project_id`` value, frame length and month, whose ``qty``, ``price`` and
``count`` metrics get the exact sums of each batch's points in each frame,
in the same request as the points (:class:`mapping.SumsCell`).

total() reads the sums resources when its filters and groupby name only
the type, ``project_id`` and time and its fields are sums, counts or
averages: a few resources instead of every series. Other totals run
Gnocchi's dynamic aggregates over the series, grouped by the resources'
attributes. retrieve() reads the buckets of the matching series (a page
counts them first, then reads its own resources) and gives each bucket's
points back. delete() removes whole resources and rewrites those that
straddle the window; it marks the months it touches stale first, so that
total() reads their series, and rebuilds their sums from the series last.

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
#: Reads of buckets that lack a metric's sums before a delete gives up.
SETTLE_ATTEMPTS = 5
#: What total() reads of every sums resource.
SUMS_OPERATIONS = '(metric (qty sum) (price sum) (count sum))'
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
    #: A delete that rewrites a resource, or rebuilds a month's sums,
    #: would lose what another process pushes into it meanwhile.
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
    def sums_type(self):
        """The resource type of the sums per type and project."""
        return self._group.resource_type_prefix + 'sums'

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
        """Forget the client; the next call makes a new one."""
        with self._lock:
            self._client = None

    def check_initialised(self):
        """Raise unless init() made the resource types; create nothing.

        :raises cloudkitty.storage.exceptions.NotInitialised: when the
            rating, the label or the sums resource type is missing.
        """
        client = self._api()
        for name in (self.rating_type, self.label_type, self.sums_type):
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

    def _pool(self):
        return concurrent.futures.ThreadPoolExecutor(
            max_workers=self._group.write_workers)

    # init ----------------------------------------------------------------

    def init(self):
        """Create the archive policy and resource types when missing.

        Idempotent; an existing archive policy that does not fit (another
        granularity, a missing aggregation method, a shorter back window)
        is an error rather than a silent mismatch. A store written before
        the sums resources existed gets them, built from its points.
        """
        client = self._api()
        self._ensure_archive_policy(client)
        self._ensure_type(client, self.rating_type, mapping.FIXED_ATTRIBUTES)
        self._ensure_type(client, self.label_type, mapping.LABEL_ATTRIBUTES)
        if self._ensure_type(client, self.sums_type,
                             mapping.SUMS_ATTRIBUTES):
            # NOTE: a store of the older layout: its months have no sums.
            self._mark_stale(client, {
                resource['ck_month']
                for resource in client.search_all(self.rating_type, None)})
        self._load_schema(client)
        self._recover(client)
        self._rebuild_stale(client)

    def _policy_definition(self):
        granularity = self._group.granularity
        back_window = math.ceil(TIMESPAN.total_seconds() / granularity)
        return {'name': self._group.archive_policy_name,
                'back_window': back_window,
                'aggregation_methods': list(mapping.AGGREGATION_METHODS),
                'definition': [{
                    'granularity': '%ds' % granularity,
                    'timespan': '%ds' % TIMESPAN.total_seconds()}]}

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
        granularity = datetime.timedelta(seconds=self._group.granularity)
        problems = []
        if not any(parse_timedelta(d['granularity']) == granularity
                   for d in policy['definition']):
            problems.append('no granularity of %s' % granularity)
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
        patch = [{'op': 'add', 'path': '/attributes/%s' % attr,
                  'value': spec} for attr, spec in attributes.items()]
        try:
            client.call(client.api.resource_type.update, name, patch)
        except client_mod.gnocchi_exc.BadRequest:
            # NOTE: another process may have added some of them first;
            # only what is still missing is added again.
            current = client.read(client.api.resource_type.get, name)
            left = [op for op in patch if op['path'].rsplit('/', 1)[1]
                    not in current['attributes']]
            if left:
                client.call(client.api.resource_type.update, name, left)
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
        for resource in client.search_all(self.label_type, None):
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
        resources, keys, cells = self._encode(frames, scope_id)
        if not resources:
            return
        client = self._schema()
        self._ensure_labels(client, keys)
        self._write(client, resources, cells)

    def _encode(self, frames, scope_id):
        """Check every point and build the measures of each resource.

        :returns: ``({resource_id: (attributes, qty measures, price
            measures, cell id, [(start_ns, qty, price)])}, {(role, key),
            ...}, {cell id: attributes})``: the exact money of each
            measure is kept for the sums (see :meth:`_write`).
        """
        granularity_ns = self._granularity_ns
        bound = self.features.max_magnitude
        checked = set()
        series_cache = {}
        slots = {}
        planned = []
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
                cache_key = (labels, period, month, slot)
                series = series_cache.get(cache_key)
                if series is None:
                    series = series_cache[cache_key] = (
                        mapping.Series(self.rating_type, scope_id, type_,
                                       point, period, month, slot),
                        mapping.SumsCell.of_point(self.sums_type, type_,
                                                  point, period, month))
                planned.append((series, start_ns, money_pair))
        first = mapping.CLOCK.reserve(len(planned))
        resources = {}
        keys = set()
        cells = {}
        for index, ((series, cell), start_ns, (qty, price)) in enumerate(
                planned):
            entry = resources.get(series.id)
            if entry is None:
                entry = resources[series.id] = (series.attributes, [], [],
                                                cell.id, [])
                keys.update(series.keys)
                cells[cell.id] = cell.attributes
            stamp = mapping.iso_ns(
                start_ns + (first + index) % granularity_ns)
            entry[1].append({'timestamp': stamp, 'value': float(qty)})
            entry[2].append({'timestamp': stamp, 'value': float(price)})
            entry[4].append((start_ns, qty, price))
        return resources, keys, cells

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

    def _measures(self, qty, price, count=None):
        """The batch body of one resource: its measures per metric."""
        policy = self._group.archive_policy_name
        body = {mapping.QTY: {'archive_policy_name': policy,
                              'measures': qty},
                mapping.PRICE: {'archive_policy_name': policy,
                                'measures': price}}
        if count is not None:
            body[mapping.COUNT] = {'archive_policy_name': policy,
                                   'measures': count}
        return body

    def _sums_measures(self, sums):
        """The batch bodies of sums resources.

        :param sums: ``{cell id: {start_ns: [count, qty units, price
            units]}}``, units of ``10**-12`` (exact ints).
        :returns: ``{cell id: body}``, one measure per frame and metric,
            at a fresh offset inside the frame (see :data:`mapping.CLOCK`).
        """
        granularity_ns = self._granularity_ns
        first = mapping.CLOCK.reserve(sum(len(f) for f in sums.values()))
        bodies = {}
        index = 0
        for cell_id, frames in sums.items():
            qty, price, count = [], [], []
            for start_ns, (points, qty_units, price_units) in sorted(
                    frames.items()):
                stamp = mapping.iso_ns(
                    start_ns + (first + index) % granularity_ns)
                index += 1
                qty.append({'timestamp': stamp,
                            'value': float(money.from_units(qty_units))})
                price.append({'timestamp': stamp,
                              'value': float(money.from_units(price_units))})
                count.append({'timestamp': stamp, 'value': points})
            bodies[cell_id] = self._measures(qty, price, count)
        return bodies

    def _write(self, client, resources, cells):
        """Send the measures of a push, with the sums of each batch.

        Each batch request holds the sums of its own points: Gnocchi
        stores or refuses a batch whole, so that the sums never count a
        point the series lack, or the other way round.
        """
        batches = []
        body = {}
        sums = {}
        measures = 0

        def close():
            body.update(self._sums_measures(sums))
            batches.append(dict(body))
            body.clear()
            sums.clear()

        for resource_id, (_, qty, price, cell_id, exact) in \
                resources.items():
            body[resource_id] = self._measures(qty, price)
            frames = sums.setdefault(cell_id, {})
            for start_ns, qty_value, price_value in exact:
                cell = frames.setdefault(start_ns, [0, 0, 0])
                cell[0] += 1
                cell[1] += money.to_units(qty_value)
                cell[2] += money.to_units(price_value)
            measures += 2 * len(qty)
            if (len(body) >= self._group.batch_size
                    or measures >= MAX_BATCH_MEASURES):
                close()
                measures = 0
        if body:
            close()

        def create_one(resource_id):
            if resource_id in cells:
                client.create_resource(self.sums_type, dict(
                    cells[resource_id], id=resource_id))
                return
            attributes = dict(resources[resource_id][0], id=resource_id)
            client.create_resource(self.rating_type, attributes)

        def create(ids):
            # NOTE: Gnocchi creates one resource per request (about 10 ms
            # of its time each): a few at a time use both its threads and
            # the time each request spends on the wire.
            self._run(create_one, [(resource_id,) for resource_id in ids])

        self._run(client.push_measures, [
            (batch, self.rating_type, create) for batch in batches])

    def _run(self, function, calls):
        """Run ``function(*args)`` for each args, a few at a time."""
        if len(calls) == 1:
            function(*calls[0])
            return
        with self._pool() as pool:
            futures = [pool.submit(function, *args) for args in calls]
            for future in futures:
                future.result()

    # reads -----------------------------------------------------------------

    def _bounds(self, query):
        bounds = {}
        if query.begin is not None:
            bounds['start'] = query.begin.isoformat()
        if query.end is not None:
            bounds['stop'] = query.end.isoformat()
        return bounds

    def _buckets(self, client, search, query=None,
                 operations=buckets_mod.BUCKET_OPERATIONS):
        """Read the buckets of the resources a search matches.

        :returns: ``({resource_id: resource}, {resource_id: [Bucket]})``;
            Gnocchi's ``details`` gives the resources with the measures,
            in the same request.
        """
        answer = client.aggregates(
            operations, self.rating_type, search, details=True,
            **(self._bounds(query) if query is not None else {}))
        resources = {resource['id']: resource
                     for resource in answer.get('references', ())}
        return resources, buckets_mod.buckets_by_resource(answer)

    def _template(self, client, resource):
        """Return ``(type, DataPoint without money)`` of a resource."""
        groupby = {}
        metadata = {}
        for attr, value in resource.items():
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
            kind = resource.get(mapping.column(mapping.KIND_OF[role], key))
            (groupby if role == mapping.GROUPBY else metadata)[key] = \
                query_mod.decode_label(kind, value)
        return resource['ck_type'], (resource['ck_unit'], groupby, metadata,
                                     resource.get('ck_desc'))

    def _point_buckets(self, client, search, query, wanted):
        """Read the buckets retrieve() gives points of.

        Sums and counts first (:data:`buckets_mod.POINT_OPERATIONS`); then
        the extremes of the resources that have a wanted bucket of several
        points, whose buckets they replace.

        :param wanted: ``wanted(resource_id, bucket)``: whether a bucket's
            points are returned.
        :returns: ``({resource_id: resource}, {resource_id: [Bucket]})``.
        """
        resources, found = self._buckets(client, search, query,
                                         buckets_mod.POINT_OPERATIONS)
        several = sorted(
            resource_id for resource_id, buckets in found.items()
            if any(bucket.count > 1 and wanted(resource_id, bucket)
                   for bucket in buckets))
        if several:
            found.update(self._buckets(
                client, {'in': {'id': several}}, query,
                buckets_mod.EXTREME_OPERATIONS)[1])
        return resources, found

    def _point_rows(self, client, resources, found, query, slots=None):
        """Build sortable rows from buckets read by :meth:`_point_buckets`.

        :param resources: ``{resource_id: resource}`` (their attributes).
        :param found: ``{resource_id: [Bucket]}``.
        :param slots: ``{(resource_id, start): (first, stop)}``: only these
            buckets, and only these copies of their points; None for every
            bucket in the window, every copy.
        :returns: ``[((start, type, resource_id, copy), end, point)]``.
        """
        rows = []
        for resource_id, buckets in found.items():
            resource = resources[resource_id]
            type_, (unit, groupby, metadata, description) = self._template(
                client, resource)
            length = datetime.timedelta(seconds=resource['ck_period'])
            for bucket in buckets:
                if slots is None:
                    if not mapping.in_window(query, bucket.start):
                        continue
                    copies = range(bucket.count)
                else:
                    span = slots.get((resource_id, bucket.start))
                    if span is None:
                        continue
                    copies = range(*span)
                qty, price = buckets_mod.uniform_point(bucket, resource_id)
                point = dataframe.DataPoint(unit, qty, price, groupby,
                                            metadata, description)
                for copy in copies:
                    rows.append(((bucket.start, type_, resource_id, copy),
                                 bucket.start + length, point))
        rows.sort(key=lambda row: row[0])
        return rows

    def _all_rows(self, client, search, query):
        """Every point of a query: one read of every matching bucket."""
        resources, found = self._point_buckets(
            client, search, query,
            lambda resource_id, bucket: mapping.in_window(query,
                                                          bucket.start))
        rows = self._point_rows(client, resources, found, query)
        return len(rows), rows

    def _page_rows(self, client, search, query):
        """The points of a query's page, and how many match in all.

        First the counts of every matching bucket (one metric read per
        resource), which place every point; then the page's resources
        alone (see :meth:`_point_buckets`).
        """
        resources, counted = self._buckets(client, search, query,
                                           buckets_mod.COUNT_OPERATIONS)
        keys = sorted(
            (bucket.start, resources[resource_id]['ck_type'], resource_id,
             bucket.count)
            for resource_id, buckets in counted.items()
            for bucket in buckets
            if bucket.count and mapping.in_window(query, bucket.start))
        first, stop = query.offset, query.offset + query.limit
        slots = {}
        position = 0
        for start, _, resource_id, count in keys:
            if position >= stop:
                break
            if position + count > first:
                slots[(resource_id, start)] = (
                    max(first - position, 0), min(stop - position, count))
            position += count
        total = sum(key[3] for key in keys)
        if not slots:
            return total, []
        ids = sorted({resource_id for resource_id, _ in slots})
        _, found = self._point_buckets(
            client, {'in': {'id': ids}}, query,
            lambda resource_id, bucket: (resource_id, bucket.start) in slots)
        return total, self._point_rows(client, resources, found, query,
                                       slots)

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Return rated points (see :meth:`BaseStorage.retrieve`).

        Unpaginated, reads every bucket of the window's matching
        resources. A page first counts the points of every bucket, then
        reads the resources of the page alone (see :meth:`_page_rows`).
        Ties on (start, type) are ordered by resource id.
        """
        query = query_mod.validate_retrieve(begin, end, filters,
                                            metric_types, offset, limit,
                                            paginate)
        client = self._schema()
        search = mapping.search_for(query, self._columns)
        if search is None:
            return query_mod.build_retrieve(0, [])
        if query.paginate:
            total, page = self._page_rows(client, search, query)
        else:
            total, page = self._all_rows(client, search, query)
        return query_mod.build_retrieve(total, [
            (key[0], end_, key[1], point) for key, end_, point in page])

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        """Sum qty and price, grouped (see :meth:`BaseStorage.total`).

        When the filters and groupby name only the type, ``project_id``
        and time, and the fields are sums, counts or averages, the sums
        resources answer (one request; see :meth:`_sums_total`). Else
        Gnocchi sums the buckets of every group of series server-side
        (one dynamic aggregate per sum, grouped by the resources'
        attributes); the buckets of a group are then added here, exactly.
        """
        query = query_mod.validate_total(groupby, begin, end, metric_types,
                                         filters, custom_fields, offset,
                                         limit, paginate)
        client = self._schema()
        if mapping.sums_usable(query):
            answer = self._sums_total(client, query)
            if answer is not None:
                return answer
        search = mapping.search_for(query, self._columns)
        if search is None:
            return query_mod.build_total(query, [])
        columns = ['ck_type']
        roles = (mapping.GROUPBY, mapping.METADATA) + tuple(
            mapping.KIND_OF.values())
        for entry in query.key_groupby:
            if entry != 'type':
                columns.extend(
                    name for name in (mapping.column(role, entry)
                                      for role in roles)
                    if name in self._columns)
        if query.time_groupby == 'time':
            columns.append('ck_period')
        # NOTE: every operation reads one aggregate of every resource, so
        # the count is fetched only when a custom field needs it.
        operations = {('sum', 'qty'): '(aggregate sum (metric qty sum))',
                      ('sum', 'price'): '(aggregate sum (metric price sum))'}
        for field in query.fields:
            if field.func in ('count', 'avg'):
                operations[('count', 'qty')] = (
                    '(aggregate sum (metric qty count))')
            if field.func in ('min', 'max'):
                operations[(field.func, field.field)] = (
                    '(aggregate %s (metric %s %s))'
                    % (field.func, field.field, field.func))
        answers = {}

        def fetch(name, operation):
            answers[name] = client.aggregates(
                operation, self.rating_type, search, groupby=columns,
                **self._bounds(query))

        self._run(fetch, list(operations.items()))
        return query_mod.build_total(query, self._partials(query, answers))

    def _sums_total(self, client, query):
        """Answer total() from the sums resources; None if one is stale.

        One search for stale marks in the window's months (a delete
        rebuilding them, or one cut short), then one request reading the
        qty, price and count sums of every matching sums resource, which
        are added here, exactly, per group and frame.
        """
        stale = client.read_search(client.api.resource.search,
                                   resource_type=self.sums_type,
                                   query=mapping.stale_search_for(query),
                                   limit=1)
        if stale:
            return None
        answer = client.aggregates(
            SUMS_OPERATIONS, self.sums_type, mapping.sums_search_for(query),
            details=True, **self._bounds(query))
        resources = {resource['id']: resource
                     for resource in answer.get('references', ())}
        partials = []
        for resource_id, metrics in answer.get('measures', {}).items():
            attributes = resources[resource_id]
            keys = tuple(attributes['ck_type'] if entry == 'type'
                         else mapping.sums_value(attributes)
                         for entry in query.key_groupby)
            period = datetime.timedelta(seconds=attributes['ck_period'])
            frames = {}
            for index, metric in enumerate(mapping.SUMS_METRICS):
                for stamp, _, value in metrics.get(metric, {}).get(
                        'sum', ()):
                    frames.setdefault(stamp, [0, 0, 0])[index] = value
            for stamp, (qty, price, count) in frames.items():
                start = buckets_mod.to_datetime(stamp)
                count = int(round(count))
                if not count or not mapping.in_window(query, start):
                    continue
                partials.append(query_mod.Partial(
                    keys, start, start + period,
                    query_mod.Aggregate.from_units(
                        count, buckets_mod.to_units(qty),
                        buckets_mod.to_units(price))))
        return query_mod.build_total(query, partials)

    def _partials(self, query, answers):
        cells = {}
        for name, groups in answers.items():
            for group in groups:
                labels = tuple(sorted(group['group'].items()))
                series = group['measures']['measures']['aggregated']
                for stamp, _, value in series:
                    start = buckets_mod.to_datetime(stamp)
                    if mapping.in_window(query, start):
                        cells.setdefault((labels, start), {})[name] = value
        partials = []
        counted = ('count', 'qty') in answers
        for (labels, start), values in cells.items():
            # NOTE: a cell exists because the group has points in that
            # bucket; without a fetched count, 1 only marks it non-empty
            # (build_total reads the count for count() and avg() alone).
            count = int(round(values.get(('count', 'qty'), 0))) \
                if counted else 1
            if not count:
                continue
            attributes = dict(labels)
            keys = tuple(attributes['ck_type'] if entry == 'type'
                         else mapping.value_of(attributes, entry)
                         for entry in query.key_groupby)
            end = start
            if query.time_groupby == 'time':
                end = start + datetime.timedelta(
                    seconds=attributes['ck_period'])
            extremes = {}
            for func in ('min', 'max'):
                extremes[func] = {
                    field: buckets_mod.to_decimal(values[(func, field)])
                    for field in query_mod.CUSTOM_SOURCES
                    if (func, field) in values}
            aggregate = query_mod.Aggregate.from_units(
                count, buckets_mod.to_units(values.get(('sum', 'qty'), 0)),
                buckets_mod.to_units(values.get(('sum', 'price'), 0)),
                extremes['min'], extremes['max'])
            partials.append(query_mod.Partial(keys, start, end, aggregate))
        return partials

    # delete --------------------------------------------------------------

    def delete(self, begin=None, end=None, filters=None):
        """Delete the points of a window (see :meth:`BaseStorage.delete`).

        Resources whose month lies inside the window are deleted whole;
        the others are read (after metricd processed them), and the ones
        with buckets on both sides of an edge are rewritten without the
        window's buckets: their remaining buckets go to a new resource,
        marked pending until the old one is gone, so that a crash never
        shows a point twice. Returns the number of points deleted, as
        processed by metricd.
        """
        query = query_mod.validate_delete(begin, end, filters)
        client = self._schema()
        self._recover(client)
        search = mapping.search_for(query, self._columns)
        if search is None:
            return 0
        resources, found = self._buckets(client, search)
        if not resources:
            return 0
        # NOTE: until the sums of these months are rebuilt, total() reads
        # the series: a delete cut short leaves the mark for the next one.
        self._mark_stale(client, {resource['ck_month']
                                  for resource in resources.values()})
        whole, partial = [], []
        for resource in resources.values():
            month_begin, month_end = mapping.month_range(
                resource['ck_month'])
            inside = ((query.begin is None or query.begin <= month_begin)
                      and (query.end is None or month_end <= query.end))
            (whole if inside else partial).append(resource['id'])
        if partial and client.pending_measures():
            # NOTE: what metricd has not processed yet would be missing
            # from the kept buckets: process it first, then read again.
            self._run(self._refresh, [(client, rid) for rid in partial])
            found.update(self._buckets(client, {'in': {'id': partial}})[1])
        if partial:
            found.update(self._settled(client, {rid: found.get(rid, ())
                                                for rid in partial}))
        deleted = 0
        rewrites = []
        for resource_id in partial:
            buckets = found.get(resource_id, [])
            gone = [b for b in buckets if mapping.in_window(query, b.start)]
            if not gone:
                continue
            if len(gone) == len(buckets):
                whole.append(resource_id)
                continue
            deleted += sum(b.count for b in gone)
            rewrites.append((client, resources[resource_id],
                             [b for b in buckets
                              if not mapping.in_window(query, b.start)]))
        deleted += sum(b.count for rid in whole
                       for b in found.get(rid, ()))
        self._run(self._rewrite, rewrites)
        if whole:
            client.delete_resources(whole)
        self._rebuild_stale(client)
        return deleted

    # sums ----------------------------------------------------------------

    def _mark_stale(self, client, months):
        """Mark months whose sums total() must not read until rebuilt."""
        self._run(client.create_resource, [
            (self.sums_type, {'id': mapping.stale_id(self.sums_type, month),
                              'ck_month': month, 'ck_stale': 1})
            for month in sorted({mapping.whole(m) for m in months})])

    def _rebuild_stale(self, client):
        """Rebuild the sums of every month marked stale, then unmark it."""
        marks = client.search_all(self.sums_type, {'=': {'ck_stale': 1}})
        for mark in marks:
            self._rebuild_month(client, mapping.whole(mark['ck_month']))
            client.delete_resources([mark['id']])

    def _rebuild_month(self, client, month):
        """Replace a month's sums resources with sums of its series.

        The series are read once metricd processed them; each sum is the
        exact sum of the buckets' float sums, sent as one measure per
        frame and metric.
        """
        search = {'and': [mapping.live_condition(),
                          {'=': {'ck_month': month}}]}
        resources, found = self._buckets(client, search)
        if resources and client.pending_measures():
            self._run(self._refresh, [(client, rid) for rid in resources])
            resources, found = self._buckets(client, search)
        found.update(self._settled(client, found))
        sums = {}
        cells = {}
        for resource_id, resource in resources.items():
            cell = mapping.SumsCell.of_series(self.sums_type, resource)
            cells[cell.id] = cell.attributes
            frames = sums.setdefault(cell.id, {})
            for bucket in found.get(resource_id, ()):
                if not bucket.count:
                    continue
                frame = frames.setdefault(mapping.to_ns(bucket.start),
                                          [0, 0, 0])
                frame[0] += bucket.count
                frame[1] += buckets_mod.to_units(bucket.qty)
                frame[2] += buckets_mod.to_units(bucket.price)
        old = client.search_all(self.sums_type, {'and': [
            {'=': {'ck_stale': None}}, {'=': {'ck_month': month}}]})
        if old:
            client.delete_resources([resource['id'] for resource in old])
        bodies = self._sums_measures(sums)
        ids = list(bodies)
        size = self._group.batch_size

        def create_one(cell_id):
            client.create_resource(self.sums_type,
                                   dict(cells[cell_id], id=cell_id))

        def create(missing):
            self._run(create_one, [(cell_id,) for cell_id in missing])

        self._run(client.push_measures, [
            ({cell_id: bodies[cell_id] for cell_id in ids[first:first + size]},
             self.sums_type, create)
            for first in range(0, len(ids), size)])

    def _settled(self, client, found):
        """Buckets read again until both metrics of each are processed.

        metricd processes a resource's ``qty`` and ``price`` apart: a
        read between the two gives buckets with a count and no price
        (seen once in CI, while rebuilding a month's sums). Such
        resources are refreshed and read again, :data:`SETTLE_ATTEMPTS`
        times at most, so that nothing is rebuilt or rewritten from half
        a bucket.

        :param found: ``{resource_id: [Bucket]}`` as read.
        :returns: ``{resource_id: [Bucket]}`` of the resources read again.
        :raises exceptions.StorageError: some still lack a metric's sums.
        """
        settled = {}
        unsettled = _unsettled(found)
        for attempt in range(SETTLE_ATTEMPTS):
            if not unsettled:
                return settled
            LOG.info('Gnocchi: %d resources have buckets without their '
                     'price or qty sums; processing them (attempt %d)',
                     len(unsettled), attempt + 1)
            time.sleep(0.2 * attempt)
            self._run(self._refresh, [(client, rid) for rid in unsettled])
            again = self._buckets(client, {'in': {'id': unsettled}})[1]
            settled.update(again)
            unsettled = _unsettled(again)
        if unsettled:
            raise exceptions.StorageError(
                'Gnocchi at %s did not process the measures of %d '
                'resources in time (%s...)' % (client.location,
                                               len(unsettled), unsettled[0]))
        return settled

    def _refresh(self, client, resource_id):
        """Make metricd process a resource's pending measures now."""
        for metric in (mapping.QTY, mapping.PRICE):
            try:
                client.read(client.api.metric.get_measures, metric,
                            resource_id=resource_id, refresh=True,
                            aggregation='count')
            except client_mod.gnocchi_exc.NotFound:
                pass

    def _rewrite(self, client, resource, kept):
        """Move a resource's kept buckets to a new one, then drop it."""
        attributes = {name: value for name, value in resource.items()
                      if name in self._columns and value is not None}
        new_id = str(uuid.uuid4())
        attributes.update(id=new_id, ck_pending=resource['id'])
        client.create_resource(self.rating_type, attributes)
        qty, price = [], []
        for bucket in kept:
            start_ns = mapping.to_ns(bucket.start)
            qty_values, price_values = buckets_mod.refill(bucket)
            for index, (q, p) in enumerate(zip(qty_values, price_values)):
                stamp = mapping.iso_ns(start_ns + index)
                qty.append({'timestamp': stamp, 'value': q})
                price.append({'timestamp': stamp, 'value': p})
        client.push_measures({new_id: self._measures(qty, price)},
                             self.rating_type, lambda ids: None)
        client.delete_resources([resource['id']])
        # NOTE: clearing the mark twice is clearing it once: repeatable.
        client.read(client.api.resource.update, self.rating_type, new_id,
                    {'ck_pending': ''})

    def _recover(self, client, min_age=PENDING_TIMEOUT):
        """Finish or undo the rewrites a crashed delete left pending.

        :param min_age: seconds a rewrite must have been pending: younger
            ones may belong to a delete still running.
        """
        stale = (datetime.datetime.now(datetime.timezone.utc)
                 - datetime.timedelta(seconds=min_age))
        # NOTE: Gnocchi's '!=' matches NULL too: ask for "not live".
        pending = client.search_all(self.rating_type, {'and': [
            {'not': mapping.live_condition()},
            {'<': {'revision_start': stale.isoformat()}}]})
        for resource in pending:
            source = resource['ck_pending']
            if not source:
                continue
            try:
                client.read(client.api.resource.get, self.rating_type,
                            source)
            except client_mod.gnocchi_exc.NotFound:
                LOG.warning('Finishing the rewrite of Gnocchi resource %s '
                            'into %s', source, resource['id'])
                client.read(client.api.resource.update, self.rating_type,
                            resource['id'], {'ck_pending': ''})
            else:
                LOG.warning('Undoing the rewrite of Gnocchi resource %s '
                            'into %s', source, resource['id'])
                client.delete_resources([resource['id']])


def _unsettled(found):
    """The resources of ``{resource_id: [Bucket]}`` with half a bucket."""
    return sorted(resource_id for resource_id, buckets in found.items()
                  if any(bucket.qty is None or bucket.price is None
                         for bucket in buckets))
