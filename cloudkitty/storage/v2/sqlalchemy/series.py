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
"""Series: the interned (scope, type, unit, groupby, metadata) of points.

A push meets each distinct series once: :func:`series_key` is its cheap
in-process identity (:func:`exact_key` when labels are not all str),
:func:`series_row` validates it and builds its
``ck_series`` row (with a SHA-256 fingerprint of its canonical JSON, the
identity shared by every process) and :func:`intern` gets or creates the ids
inside the push's transaction.
"""

import hashlib
import json

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2.sqlalchemy import engine
from cloudkitty.storage.v2.sqlalchemy import models

_CHUNK = 500
#: The ids of the series of some fingerprints, on PostgreSQL: one array
#: parameter (``fingerprints``) for any number of them. A first push of
#: 10,200 new series read them back in 21 statements of 500 parameters
#: otherwise, 135 ms of 880 (measured).
_IDS_OF_FINGERPRINTS = sa.select(
    models.series.c.fingerprint, models.series.c.id).where(
    models.series.c.fingerprint == sa.any_(sa.bindparam(
        'fingerprints', type_=postgresql.ARRAY(sa.String))))


def series_key(scope_id, type_, point):
    """Return the in-process identity of a point's series (hashable).

    Two keys for the same series may differ (mapping order); they then
    share one fingerprint and so one id.
    """
    # NOTE: from the tuple the point is, which is quicker than its
    # attributes: a push calls this for every point.
    unit, _, _, groupby, metadata, description = point
    return (scope_id, type_, unit, tuple(groupby.items()),
            tuple(metadata.items()), description)


def exact_key(key, point):
    """Return the identity of a series whose labels are not all str.

    :func:`series_key` compares values with ``==``, under which ``1``,
    ``1.0`` and ``True`` (or ``0.0`` and ``-0.0``) are one value; they are
    other series. So a point with such values is known by this longer key
    instead: the key itself when every value is a str (the usual case,
    checked only when the key missed the cache), else the key and the
    :func:`~cloudkitty.storage.v2.query.encode_label` of every value.
    """
    _, _, _, groupby, metadata, _ = point
    if all(isinstance(v, str) for v in groupby.values()) and \
            all(isinstance(v, str) for v in metadata.values()):
        return key
    encode = query.encode_label
    return key + (tuple(map(encode, groupby.values())),
                  tuple(map(encode, metadata.values())))


def check_name(value, field):
    """Refuse a non-str, too long (> 255) or non-storable name."""
    if not isinstance(value, str):
        raise exceptions.InvalidQuery(
            field, 'expected a str, got %s' % type(value).__name__, value)
    if len(value) > models.MAX_NAME_LENGTH:
        raise exceptions.InvalidQuery(
            field, 'longer than %d characters' % models.MAX_NAME_LENGTH,
            value)
    check_text(value, field)


#: Refuses text that no database keeps as it is (NUL, lone surrogate).
check_text = query.check_text


#: Canonical JSON: ``json.dumps(value, sort_keys=True,
#: ensure_ascii=False)``, with one encoder made once (``json.dumps`` makes
#: one per call with these arguments). Fingerprints depend on this text:
#: it must never change.
_canonical = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def series_row(scope_id, type_, point):
    """Validate a new series and return its ``ck_series`` row.

    The row also carries ``labels``, the merged groupby and metadata (groupby
    wins) that go to ``ck_label``.

    :raises cloudkitty.storage.exceptions.InvalidQuery: for a name over 255
        characters, a NUL character or a lone surrogate.
    """
    check_name(type_, 'type')
    check_name(point.unit, 'unit')
    for field, mapping in (('groupby', point.groupby),
                           ('metadata', point.metadata)):
        for key, value in mapping.items():
            check_name(key, field)
            if isinstance(value, str):
                check_text(value, field)
    if point.description is not None:
        check_text(point.description, 'description')
    groupby = _canonical(dict(point.groupby))
    metadata = _canonical(dict(point.metadata))
    identity = _canonical([scope_id, type_, point.unit, groupby, metadata,
                           point.description])
    fingerprint = hashlib.sha256(identity.encode('utf-8')).hexdigest()
    return {'fingerprint': fingerprint, 'scope_id': scope_id, 'type': type_,
            'unit': point.unit, 'groupby': groupby, 'metadata': metadata,
            'description': point.description, 'labels': point.desc}


def intern(conn, new_series):
    """Get or create the ids of new series, in the push's transaction.

    Another process may create the same series at the same time: the
    insert ignores duplicates and the ids are read back afterwards. Series
    are inserted in fingerprint order and labels in key order, so that two
    pushes creating some of the same series wait for each other in one
    order, never in a cycle (a deadlock), whatever the order of their
    points.

    On PostgreSQL (psycopg), the insert returns the ids of the series it
    created, and only those get labels, copied into ``ck_label`` as they
    are: a series it did not create was committed, labels included, by
    the transaction that did (the insert waits for it), and no other
    transaction can label an id this one created. Merged with ``ON
    CONFLICT``, the 30,600 labels of a first push of 10,200 series took
    260 ms (measured).

    :param new_series: ``{series key: series_row(...)}``.
    :returns: ``{series key: id}``.
    """
    if not new_series:
        return {}
    by_fingerprint = {}
    for key, row in sorted(new_series.items(),
                           key=lambda item: item[1]['fingerprint']):
        by_fingerprint.setdefault(row['fingerprint'], (row, []))[1].append(
            key)
    rows = [{name: value for name, value in row.items() if name != 'labels'}
            for row, _ in by_fingerprint.values()]
    if engine.copies(conn.dialect):
        labelled = dict(engine.copy_rows(
            conn, models.series, rows,
            ' ON CONFLICT DO NOTHING RETURNING fingerprint, id'))
        found = dict(labelled)
        if len(found) < len(by_fingerprint):
            found.update(_ids_of(conn, [fingerprint
                                        for fingerprint in by_fingerprint
                                        if fingerprint not in labelled]))
    else:
        engine.insert_many_ignoring_duplicates(conn, models.series, rows)
        found = labelled = dict(_ids_of(conn, list(by_fingerprint)))
    ids = {key: found[fingerprint]
           for fingerprint, (_, keys) in by_fingerprint.items()
           for key in keys}
    labels = [label_row(labelled[fingerprint], name, value)
              for fingerprint, (row, _) in by_fingerprint.items()
              if fingerprint in labelled
              for name, value in row['labels'].items()]
    if labels:
        labels.sort(key=lambda label: (label['series_id'], label['key']))
        if engine.copies(conn.dialect):
            engine.copy_rows(conn, models.label, labels)
        else:
            engine.insert_many_ignoring_duplicates(conn, models.label,
                                                   labels)
    return ids


def _ids_of(conn, fingerprints):
    """Yield the ``(fingerprint, id)`` of the series of ``fingerprints``."""
    if conn.dialect.name == 'postgresql':
        yield from conn.execute(_IDS_OF_FINGERPRINTS,
                                {'fingerprints': fingerprints})
        return
    series = models.series
    for start in range(0, len(fingerprints), _CHUNK):
        yield from conn.execute(
            sa.select(series.c.fingerprint, series.c.id).where(
                series.c.fingerprint.in_(
                    fingerprints[start:start + _CHUNK])))


def label_row(series_id, key, value):
    """Return the ``ck_label`` row of one label of a series.

    ``value`` holds the label's string form (what filters compare with)
    and ``kind`` its type (see :func:`~cloudkitty.storage.v2.query.
    encode_label`).
    """
    kind, text = query.encode_label(value)
    return {'series_id': series_id, 'key': key, 'value': text,
            'kind': kind}


def kind_of(label):
    """The kind of a ``ck_label`` alias's value, ``'s'`` where it lacks one.

    A point lacking the label groups as the str ``''``.
    """
    return sa.func.coalesce(label.c.kind, query.STR)


def load(conn, series_ids, cache):
    """Fill ``cache`` with ``{id: (type, unit, groupby, metadata, desc)}``.

    :returns: ``cache``.
    """
    missing = [i for i in set(series_ids) if i not in cache]
    series = models.series
    for start in range(0, len(missing), _CHUNK):
        for row in conn.execute(sa.select(
                series.c.id, series.c.type, series.c.unit, series.c.groupby,
                series.c.metadata, series.c.description).where(
                series.c.id.in_(missing[start:start + _CHUNK]))):
            # NOTE: frozen once here, the attributes are shared by every
            # point of the series that retrieve() rebuilds.
            cache[row.id] = (
                row.type, row.unit,
                dataframe.frozen_attributes(json.loads(row.groupby)),
                dataframe.frozen_attributes(json.loads(row.metadata),
                                            'metadata'),
                row.description)
    return cache
