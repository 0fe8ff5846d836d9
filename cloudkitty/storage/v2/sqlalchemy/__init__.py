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
"""The SQL storage backend: SQLite (default), PostgreSQL and MariaDB/MySQL.

One ``sqlalchemy`` entry point serves the three databases; the
``[storage_sqlalchemy] connection`` URL picks the dialect. The layout is
described in :mod:`cloudkitty.storage.v2.sqlalchemy.models`; the schema is
created and upgraded by alembic migrations when :meth:`init` runs.

Money is exact: every qty and price is kept as an integer pair, and sums are
computed by the database on integers. SQLite's 64-bit ``sum()`` can only
overflow past about 9,000 points near ``10**15`` or 9 million full
fractions; the query is then run again with each column split in two
(:data:`_SPLIT`), whose sums cannot overflow.
"""

import contextlib
import datetime
import gc
import hashlib
import json

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy import exc as sa_exc

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage import v2
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query as query_mod
from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import migration
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import options

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MICROSECOND = datetime.timedelta(microseconds=1)
# NOTE: how SQLite sums are split when a plain sum() overflows: a column c
# is summed as sum(c / _SPLIT) and sum(c % _SPLIT) (integer division).
_SPLIT = 10 ** 6
_CHUNK = 500
_MONEY_COLUMNS = ('qty_hi', 'qty_lo', 'price_hi', 'price_lo')
# NOTE: offsets and widths that turn a (hi, lo) pair into a fixed-width
# string of digits which sorts like the value, for SQLite's min()/max().
_HI_OFFSET, _HI_WIDTH = 10 ** 15, 16
_LO_WIDTH = 12


def to_micros(moment):
    """Return an aware datetime as integer microseconds since the epoch."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros):
    """Return integer microseconds since the epoch as aware UTC."""
    return _EPOCH + datetime.timedelta(microseconds=micros)


class SQLAlchemyFeatures(v2.Features):
    """Capabilities of the SQL backend: it honours the whole contract."""

    exact_decimal = True
    groupby_time = True
    custom_fields = True
    delete_with_filters = True
    eventually_consistent = False
    atomic_push = True
    concurrent_writers = True
    max_value_length = None


class _Overflow(Exception):
    """A SQLite integer sum overflowed; retry with split sums."""


class SQLAlchemyStorage(v2.BaseStorage):
    """Rated data in a SQL database, through SQLAlchemy Core.

    :param conf: the conf to read (``cfg.CONF`` if None).
    :param connection: a SQLAlchemy URL overriding
        ``[storage_sqlalchemy] connection``.
    """

    name = 'sqlalchemy'
    features = SQLAlchemyFeatures

    def __init__(self, conf=None, connection=None, **kwargs):
        super().__init__(conf, **kwargs)
        options.register_opts(self.conf)
        opts = self.conf.storage_sqlalchemy
        self.engine = engine_mod.create_engine(
            connection or opts.connection, busy_timeout=opts.busy_timeout,
            connect_timeout=opts.connect_timeout, pool_size=opts.pool_size)
        # NOTE: series rows never change once committed, so both caches
        # only ever grow; they hold committed rows only.
        self._series_ids = {}
        self._series_points = {}

    @property
    def location(self):
        """The database URL, without its password."""
        return engine_mod.safe_location(self.engine.url)

    @property
    def _insert_points_sql(self):
        """``INSERT INTO ck_point`` in the driver's own parameter style."""
        dialect = self.engine.dialect
        quote = dialect.identifier_preparer.quote
        columns = ('series_id', 'begin', 'end') + _MONEY_COLUMNS
        marker = '?' if dialect.paramstyle == 'qmark' else '%s'
        return 'INSERT INTO %s (%s) VALUES (%s)' % (
            quote(models.point.name), ', '.join(quote(c) for c in columns),
            ', '.join([marker] * len(columns)))

    # init -----------------------------------------------------------------

    def init(self):
        """Create or upgrade the schema to the latest migration.

        Idempotent, and safe when several processes call it at once.
        """
        with engine_mod.translate_errors(self.engine):
            migration.upgrade(self.engine)

    def close(self):
        """Close every pooled connection (see :meth:`BaseStorage.close`)."""
        self.engine.dispose()

    # push ------------------------------------------------------------------

    def push(self, dataframes, scope_id=None):
        """Store rated data in one transaction (see ``BaseStorage.push``)."""
        frames = query_mod.validate_dataframes(dataframes)
        if scope_id is not None:
            _check_name(scope_id, 'scope_id')
        with _no_cyclic_gc():
            self._push(frames, scope_id)

    def _push(self, frames, scope_id):
        rows, new_series = self._encode(frames, scope_id)
        if not rows:
            return
        with engine_mod.translate_errors(self.engine):
            with engine_mod.writing(self.engine) as conn:
                created = self._intern(conn, new_series)
                ids = ({**self._series_ids, **created} if created
                       else self._series_ids)
                # NOTE: plain DB-API executemany on tuples: SQLAlchemy's
                # per-row parameter processing would cost more than the
                # database's own work here.
                conn.exec_driver_sql(self._insert_points_sql, [
                    (ids[r[0]],) + r[1:] for r in rows])
        self._series_ids.update(created)

    def _encode(self, frames, scope_id):
        """Check and encode every point before anything is written.

        :returns: ``(rows, new_series)``: one ``(series key, begin, end,
            qty_hi, qty_lo, price_hi, price_lo)`` tuple per point, and the
            ``ck_series`` rows of the series not seen before.
        """
        rows = []
        new_series = {}
        known = self._series_ids
        for frame in frames:
            begin, end = to_micros(frame.start), to_micros(frame.end)
            for type_, point in frame.iterpoints():
                key = (scope_id, type_, point.unit,
                       frozenset(point.groupby.items()),
                       frozenset(point.metadata.items()), point.description)
                if key not in known and key not in new_series:
                    new_series[key] = _series_row(scope_id, type_, point)
                rows.append((key, begin, end)
                            + money.encode(point.qty, 'qty')
                            + money.encode(point.price, 'price'))
        return rows, new_series

    def _insert_ignoring_duplicates(self, conn, table, rows):
        name = self.engine.dialect.name
        if name == 'postgresql':
            stmt = postgresql.insert(table).on_conflict_do_nothing()
        elif name == 'sqlite':
            stmt = sqlite.insert(table).on_conflict_do_nothing()
        else:
            stmt = mysql.insert(table).prefix_with('IGNORE')
        conn.execute(stmt, rows)

    def _intern(self, conn, new_series):
        """Get or create the ids of new series, in the push's transaction.

        Another process may create the same series at the same time: the
        insert ignores duplicates and the ids are read back afterwards.
        """
        if not new_series:
            return {}
        by_fingerprint = {row['fingerprint']: (key, row)
                          for key, row in new_series.items()}
        self._insert_ignoring_duplicates(
            conn, models.series, [row for _, row in by_fingerprint.values()])
        ids = {}
        fingerprints = list(by_fingerprint)
        for start in range(0, len(fingerprints), _CHUNK):
            chunk = fingerprints[start:start + _CHUNK]
            for fingerprint, series_id in conn.execute(
                    sa.select(models.series.c.fingerprint,
                              models.series.c.id).where(
                        models.series.c.fingerprint.in_(chunk))):
                ids[by_fingerprint[fingerprint][0]] = series_id
        labels = [{'series_id': ids[key], 'key': name, 'value': value}
                  for key, row in by_fingerprint.values()
                  for name, value in row['labels'].items()]
        if labels:
            self._insert_ignoring_duplicates(conn, models.label, labels)
        return ids

    # reading ---------------------------------------------------------------

    def _conditions(self, query):
        """Translate a query's window, types and filters to WHERE clauses.

        Every value is a bound parameter; filter keys and values are data.
        """
        point, series, label = models.point, models.series, models.label
        clauses = []
        if query.begin is not None:
            clauses.append(point.c.begin >= to_micros(query.begin))
        if query.end is not None:
            clauses.append(point.c.begin < to_micros(query.end))
        series_clauses = []
        if query.metric_types is not None:
            series_clauses.append(series.c.type.in_(query.metric_types))
        for key, values in query.filters:
            if key == 'type':
                series_clauses.append(series.c.type.in_(values))
            else:
                series_clauses.append(series.c.id.in_(
                    sa.select(label.c.series_id).where(
                        label.c.key == key, label.c.value.in_(values))))
        if series_clauses:
            clauses.append(point.c.series_id.in_(
                sa.select(series.c.id).where(*series_clauses)))
        return clauses

    def _series_info(self, conn, series_ids):
        """Return ``{id: (type, unit, groupby, metadata, description)}``."""
        missing = [i for i in set(series_ids) if i not in self._series_points]
        series = models.series
        for start in range(0, len(missing), _CHUNK):
            for row in conn.execute(sa.select(
                    series.c.id, series.c.type, series.c.unit,
                    series.c.groupby, series.c.metadata,
                    series.c.description).where(
                    series.c.id.in_(missing[start:start + _CHUNK]))):
                self._series_points[row.id] = (
                    row.type, row.unit, json.loads(row.groupby),
                    json.loads(row.metadata), row.description)
        return self._series_points

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Return rated points as DataFrames (see ``BaseStorage.retrieve``).

        The tiebreak after frame start and type is push order.
        """
        query = query_mod.validate_retrieve(
            begin=begin, end=end, filters=filters, metric_types=metric_types,
            offset=offset, limit=limit, paginate=paginate)
        point, series = models.point, models.series
        where = self._conditions(query)
        count = sa.select(sa.func.count()).select_from(point).where(*where)
        stmt = sa.select(
            point.c.series_id, point.c.begin, point.c.end,
            *[point.c[name] for name in _MONEY_COLUMNS]).select_from(
            point.join(series, series.c.id == point.c.series_id)).where(
            *where).order_by(point.c.begin, series.c.type, point.c.id)
        if query.paginate:
            stmt = stmt.offset(query.offset).limit(query.limit)
        with engine_mod.translate_errors(self.engine):
            with self.engine.connect() as conn:
                total = conn.scalar(count)
                rows = conn.execute(stmt).all()
                info = self._series_info(conn, [r.series_id for r in rows])
        points = []
        for row in rows:
            type_, unit, groupby, metadata, description = info[row.series_id]
            points.append((
                from_micros(row.begin), from_micros(row.end), type_,
                dataframe.DataPoint(
                    unit, money.join(row.qty_hi, row.qty_lo),
                    money.join(row.price_hi, row.price_lo), groupby,
                    metadata, description)))
        return query_mod.build_retrieve(total, points)

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        """Return grouped sums (see :meth:`BaseStorage.total`)."""
        query = query_mod.validate_total(
            groupby=groupby, begin=begin, end=end, metric_types=metric_types,
            filters=filters, custom_fields=custom_fields, offset=offset,
            limit=limit, paginate=paginate)
        with engine_mod.translate_errors(self.engine):
            with self.engine.connect() as conn:
                try:
                    partials = self._aggregate(conn, query, split=False)
                except _Overflow:
                    partials = self._aggregate(conn, query, split=True)
        return query_mod.build_total(query, partials)

    def _aggregate(self, conn, query, split):
        """Run the aggregate query; return :class:`query.Partial` groups.

        Points are first summed per series (and frame, when grouping by
        time), then joined to their labels and summed again, so that the
        join works on series, not on points.
        """
        point, series, label = models.point, models.series, models.label
        time = query.time_groupby is not None
        extremes = sorted({(f.func, f.field) for f in query.fields
                           if f.func in ('min', 'max')})
        inner_cols = [point.c.series_id] if query.key_groupby else []
        if time:
            inner_cols += [point.c.begin, point.c.end]
        sums = [sa.func.count().label('n')]
        for name in _MONEY_COLUMNS:
            sums += self._sum(point.c[name], name, split)
        for func, field in extremes:
            sums.append(getattr(sa.func, func)(self._sortable(
                point.c[field + '_hi'], point.c[field + '_lo'])).label(
                '%s_%s' % (func, field)))
        inner = sa.select(*inner_cols, *sums).where(
            *self._conditions(query)).group_by(*inner_cols)
        if query.key_groupby:
            inner = inner.subquery('partial')
            keys, joined = [], inner.join(
                series, series.c.id == inner.c.series_id)
            for index, key in enumerate(query.key_groupby):
                if key == 'type':
                    keys.append(series.c.type)
                    continue
                alias = label.alias('label_%d' % index)
                joined = joined.outerjoin(alias, sa.and_(
                    alias.c.series_id == inner.c.series_id,
                    alias.c.key == key))
                keys.append(sa.func.coalesce(alias.c.value, ''))
            keys = [k.label('key_%d' % i) for i, k in enumerate(keys)]
            group = keys + ([inner.c.begin, inner.c.end] if time else [])
            outer = [sa.func.sum(inner.c.n).label('n')]
            for column in inner.c:
                if column.name in ('series_id', 'begin', 'end', 'n'):
                    continue
                func = (sa.func.min if column.name.startswith('min_') else
                        sa.func.max if column.name.startswith('max_') else
                        sa.func.sum)
                outer.append(func(column).label(column.name))
            stmt = sa.select(*group, *outer).select_from(joined).group_by(
                *group)
        else:
            stmt = inner
        try:
            rows = conn.execute(stmt).all()
        except sa_exc.OperationalError as exc:
            if 'integer overflow' in str(exc.orig) and not split:
                raise _Overflow() from exc
            raise
        nkeys = len(query.key_groupby)
        partials = []
        for row in rows:
            values = row._mapping
            if not values['n']:
                continue
            money_values = [self._unsplit(values, name, split)
                            for name in _MONEY_COLUMNS]
            mins, maxs = {}, {}
            for func, field in extremes:
                target = mins if func == 'min' else maxs
                target[field] = self._unsortable(
                    values['%s_%s' % (func, field)])
            partials.append(query_mod.Partial(
                tuple(values['key_%d' % i] for i in range(nkeys)),
                from_micros(values['begin']) if time else None,
                from_micros(values['end']) if time else None,
                query_mod.Aggregate.from_sums(
                    values['n'], money.join(*money_values[:2]),
                    money.join(*money_values[2:]), mins, maxs)))
        return partials

    def _sum(self, column, name, split):
        if not split:
            return [sa.func.sum(column).label(name)]
        # NOTE: // renders SQLite's integer division, which truncates like
        # its %, so that column == div * _SPLIT + mod holds exactly.
        return [sa.func.sum(column // _SPLIT).label(name + '_div'),
                sa.func.sum(column % _SPLIT).label(name + '_mod')]

    @staticmethod
    def _unsplit(values, name, split):
        if not split:
            return values[name] or 0
        return (values[name + '_div'] or 0) * _SPLIT + (
            values[name + '_mod'] or 0)

    def _sortable(self, hi, lo):
        """An expression ordered like the value ``hi + lo / 10**12``."""
        if self.engine.dialect.name == 'sqlite':
            return sa.func.printf('%0*d%0*d', _HI_WIDTH, hi + _HI_OFFSET,
                                  _LO_WIDTH, lo)
        return sa.cast(hi, sa.Numeric(40, 0)) * money.SCALE + lo

    def _unsortable(self, value):
        if self.engine.dialect.name == 'sqlite':
            return money.join(int(value[:_HI_WIDTH]) - _HI_OFFSET,
                              int(value[_HI_WIDTH:]))
        return money.join(0, value)

    # delete ----------------------------------------------------------------

    def delete(self, begin=None, end=None, filters=None):
        """Delete points (see :meth:`BaseStorage.delete`).

        :returns: the number of points deleted.
        """
        query = query_mod.validate_delete(begin=begin, end=end,
                                          filters=filters)
        with engine_mod.translate_errors(self.engine):
            with engine_mod.writing(self.engine) as conn:
                result = conn.execute(models.point.delete().where(
                    *self._conditions(query)))
                return result.rowcount


@contextlib.contextmanager
def _no_cyclic_gc():
    """Pause the cyclic garbage collector around a bulk encoding.

    Encoding a push allocates a few objects per point and no cycle; left
    on, the collector would walk every live object many times per push,
    which costs more than the encoding itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_name(value, field):
    if not isinstance(value, str):
        raise exceptions.InvalidQuery(
            field, 'expected a str, got %s' % type(value).__name__, value)
    if len(value) > models.MAX_NAME_LENGTH:
        raise exceptions.InvalidQuery(
            field, 'longer than %d characters' % models.MAX_NAME_LENGTH,
            value)
    _check_text(value, field)


def _check_text(value, field):
    # NOTE: PostgreSQL text cannot hold NUL, and no database can store a
    # lone surrogate; both are refused the same way everywhere.
    if '\x00' in value:
        raise exceptions.InvalidQuery(field, 'contains a NUL character',
                                      value)
    try:
        value.encode('utf-8')
    except UnicodeEncodeError as exc:
        raise exceptions.InvalidQuery(
            field, 'is not valid unicode: %s' % exc, value) from exc


def _series_row(scope_id, type_, point):
    """Validate a new series and return its ``ck_series`` row (+ labels)."""
    _check_name(type_, 'type')
    _check_name(point.unit, 'unit')
    for field, mapping in (('groupby', point.groupby),
                           ('metadata', point.metadata)):
        for key, value in mapping.items():
            _check_name(key, field)
            _check_text(value, field)
    if point.description is not None:
        _check_text(point.description, 'description')
    groupby = json.dumps(dict(point.groupby), sort_keys=True,
                         ensure_ascii=False)
    metadata = json.dumps(dict(point.metadata), sort_keys=True,
                          ensure_ascii=False)
    identity = json.dumps([scope_id, type_, point.unit, groupby, metadata,
                           point.description], ensure_ascii=False)
    fingerprint = hashlib.sha256(identity.encode('utf-8')).hexdigest()
    return {'fingerprint': fingerprint,
            'scope_id': scope_id, 'type': type_, 'unit': point.unit,
            'groupby': groupby, 'metadata': metadata,
            'description': point.description, 'labels': point.desc}
