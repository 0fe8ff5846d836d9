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
"""The storage v2 contract: :class:`BaseStorage` and :class:`Features`.

A backend subclasses :class:`BaseStorage`, implements its five abstract
methods by translating a :class:`cloudkitty.storage.v2.query.Query`, declares
what it can do in a :class:`Features` subclass, and registers an entry point
in the ``cloudkitty.storage.v2.backends`` namespace.

Arguments are checked once, here, for every backend that declares its
``features``: its ``push``, ``retrieve``, ``total``, ``delete`` and
``iter_points`` are wrapped so that :meth:`BaseStorage.check_arguments`
runs before them (see :meth:`BaseStorage.__init_subclass__`).
"""

import abc
import dataclasses
import datetime
import decimal
import functools
import importlib

from oslo_log import log
from werkzeug import exceptions as http_exceptions

from cloudkitty.storage import exceptions
from cloudkitty.storage import options
from cloudkitty.storage.v2 import bulk
from cloudkitty.storage.v2 import query as query_mod

LOG = log.getLogger(__name__)

#: The ``[storage]`` options (upstream defines retention_period here).
storage_opts = options.storage_opts


class Features:
    """What a backend can do; every flag is a question with a safe default.

    The conformance suite reads these flags to skip, with the flag's name as
    the reason, what a backend declares it cannot do. At run time an
    unsupported call raises :class:`~cloudkitty.storage.exceptions.
    NotSupported`; it never answers wrongly.
    """

    #: Are qty and price sums exact Decimals rather than float64 sums?
    exact_decimal = False
    #: Can total() group by ``time``, ``time-d``, ``-w``, ``-m``, ``-y``?
    groupby_time = False
    #: Does total() accept ``custom_fields``?
    custom_fields = False
    #: Can delete() be restricted by ``filters``?
    delete_with_filters = False
    #: Is a point visible only after the backend processed it (so the suite
    #: must call ``wait_for_backend()`` before reading)?
    eventually_consistent = True
    #: Is a failed push all or nothing?
    atomic_push = False
    #: Can several processes push into the same store at once, safely?
    concurrent_writers = False
    #: Longest groupby/metadata value the backend keeps (None: no limit).
    max_value_length = None
    #: Does push() accept an ``idempotency_key``, so that a push retried
    #: with the same key is stored once?
    idempotent_push = False
    #: Below what magnitude are qty and price kept and summed exactly
    #: (push() refuses larger ones)?
    max_magnitude = 10 ** 15
    #: How far, relative to ``|exact| + 1``, may a qty or price sum be from
    #: the exact Decimal sum (0 where ``exact_decimal``, see :func:`cloudkitty.
    #: storage.v2.money.agrees`)?
    float_tolerance = decimal.Decimal('1e-9')


@dataclasses.dataclass(frozen=True)
class StoreDescription:
    """Where a store is and what it takes (:meth:`BaseStorage.describe`).

    For people, and for tools such as ``cloudkitty-storage bench``.

    :ivar location: where the store is (a URL, a path, a host), never with
        a password; None when the backend cannot tell.
    :ivar size_bytes: bytes the store takes, None when the backend cannot
        tell.
    :ivar process_private: True when no other process can reach the store
        (an in-memory database).
    """

    location: str = None
    size_bytes: int = None
    process_private: bool = False


class BaseStorage(metaclass=abc.ABCMeta):
    """Abstract rated-data storage (v2).

    Every method validates its arguments with
    :mod:`cloudkitty.storage.v2.query` before touching storage and raises
    :class:`~cloudkitty.storage.exceptions.InvalidQuery` for bad ones.
    Datetimes may be naive (meaning UTC) or aware; returned ones are aware
    UTC. A point belongs to the window ``[begin, end)`` when its frame's
    start is ``>= begin`` and ``< end``.

    The constructor takes any arguments, as upstream CloudKitty's does, so
    that upstream's own backends can subclass this class.

    :param conf: the :class:`oslo_config.cfg.ConfigOpts` to read; defaults
        to ``cfg.CONF``. The storage options are registered on it. Any other
        value is upstream CloudKitty's metric configuration: it is kept as
        :attr:`metrics_conf` and ``cfg.CONF`` is read.
    :param period: the collection period in seconds, which CloudKitty
        passes; kept as :attr:`period` (None when not given).
    """

    #: The entry-point name of the backend, used in messages.
    name = None
    #: The backend's capabilities (a :class:`Features` subclass).
    features = Features

    #: upstream's ``time-<x>`` groupby suffixes and the label names its
    #: collectors give each point (see :meth:`parse_groupby_syntax_to_\
    #: groupby_elements`).
    TIME_COMMANDS_MAP = {'d': 'day_of_the_year', 'w': 'week_of_the_year',
                         'm': 'month', 'y': 'year'}

    #: The methods whose arguments :meth:`check_arguments` checks.
    CHECKED_METHODS = ('push', 'retrieve', 'total', 'delete', 'iter_points')
    #: The checked methods that run with the cyclic garbage collector
    #: paused (see :func:`cloudkitty.storage.v2.bulk.no_cyclic_gc`): reads
    #: that build a result of many objects at once.
    PAUSED_METHODS = ('retrieve', 'total')

    def __init_subclass__(cls, **kwargs):
        """Wrap the backend's methods so that their arguments are checked.

        Only a class whose ``features`` is not the base :class:`Features`
        (this library's backends and third-party ones) is wrapped:
        upstream CloudKitty's own backends subclass this class with
        semantics of their own, which they check themselves.
        """
        super().__init_subclass__(**kwargs)
        if cls.features is Features:
            return
        for name in cls.CHECKED_METHODS:
            # NOTE: an inherited method is wrapped too (the default
            # iter_points() among them), on this class.
            method = getattr(cls, name)
            if not getattr(method, '_checked', False):
                setattr(cls, name, _checked(name, method))

    def check_arguments(self, method, *args, **kwargs):
        """Check the arguments of a call before the backend sees them.

        Runs :mod:`cloudkitty.storage.v2.query`'s validation for
        ``method`` and refuses what this backend's :attr:`features` lack.
        Backends never call it: the wrapper that
        :meth:`__init_subclass__` installs does.

        :param method: one of :data:`CHECKED_METHODS`.
        :param args: the call's positional arguments (without ``self``).
        :param kwargs: the call's keyword arguments.
        :returns: ``(args, kwargs)`` to call the backend with: the same,
            except that push()'s frames become a list (an iterator is read
            once, here).
        :raises cloudkitty.storage.exceptions.InvalidQuery: for a bad
            argument.
        :raises cloudkitty.storage.exceptions.NotSupported: for what the
            backend's features lack.
        """
        frames = _CHECKS[method](self, *args, **kwargs)
        if method == 'push':
            # NOTE: an iterator of frames was read by the check; the
            # backend gets the list it made.
            if args:
                args = (frames,) + args[1:]
            else:
                kwargs = dict(kwargs, dataframes=frames)
        return args, kwargs

    def __init__(self, *args, **kwargs):
        conf = kwargs.get('conf', args[0] if args else None)
        self.conf = options.oslo_conf(conf)
        self.metrics_conf = None if conf is self.conf else conf
        self.period = kwargs.get('period')
        options.register_opts(self.conf)

    @abc.abstractmethod
    def init(self):
        """Create or upgrade whatever the backend needs; idempotent.

        :raises cloudkitty.storage.exceptions.BackendUnavailable: when the
            server cannot be reached (the message names the host, never a
            password).
        """

    @abc.abstractmethod
    def push(self, dataframes, scope_id=None, idempotency_key=None):
        """Store rated data, all or nothing.

        Every frame is validated before anything is written. Every point is
        kept and counted: two identical points are two points, and frames
        may arrive in any time order.

        A caller that cannot tell whether a push landed (a timeout, a lost
        connection) retries it with the same ``idempotency_key``: the first
        push with a key stores its points, later ones with that key store
        nothing. A good key names what was rated, for example
        ``'<scope_id>/<period start>'``. A delete forgets the keys of the
        pushes with a frame in its window, so that a re-rated period pushed
        again with its key is stored again. Without a key, every push
        counts.

        Every qty and price is stored as
        :func:`cloudkitty.storage.v2.money.check` returns it: a Decimal,
        int or float (floats through ``str()``), rounded to 12 fractional
        digits, half to even. ``retrieve()`` returns the stored values and
        ``total()`` sums them exactly. Groupby and metadata values may be
        str, int, float, bool or None, and keep their type.

        :param dataframes: the frames to store.
        :type dataframes: list of :class:`cloudkitty.dataframe.DataFrame`
        :param scope_id: the scope (project) the frames were rated for.
        :type scope_id: str
        :param idempotency_key: None, or a str of 1 to 255 characters that
            names this push (see above).
        :type idempotency_key: str
        :raises cloudkitty.storage.exceptions.InvalidQuery: for an item that
            is not a DataFrame; a qty or price that is NaN, infinite, not a
            Decimal/int/float, or whose magnitude, once rounded, reaches
            the backend's ``features.max_magnitude`` (10**20 on SQL;
            10**15 on InfluxDB, Gnocchi and by default); a nested dict or
            list as a groupby or metadata value; a bad key, or a key
            already used by a push of other data (other scope, count or
            sums).
        :raises cloudkitty.storage.exceptions.NotSupported: for a key, when
            the backend's ``features.idempotent_push`` is off.
        """

    @abc.abstractmethod
    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Return the rated points of a window, as DataFrames.

        :param begin: start of the window (inclusive); defaults to the start
            of the current UTC month.
        :type begin: datetime.datetime
        :param end: end of the window (exclusive); defaults to the start of
            the next UTC month.
        :type end: datetime.datetime
        :param filters: ``{key: value}`` or ``{key: [v1, v2]}``: OR inside a
            list, AND across keys; a key is ``type`` or a groupby/metadata
            key; a filter value (a str) matches a value whose ``str()`` it
            equals exactly, whatever that value's type.
        :type filters: dict
        :param metric_types: one metric type or a list of them; None or
            an empty list means every type.
        :type metric_types: str or list
        :param offset: index of the first point of the page.
        :param limit: number of points in a page (>= 1).
        :param paginate: False returns every matching point.
        :returns: ``{'total': <number of matching points>, 'dataframes':
            [DataFrame, ...]}``. Points are ordered by frame start, then
            type, then a backend-defined stable tiebreak, and pages
            partition that order. There is one DataFrame per distinct
            ``(start, end)``, ascending.
        :raises cloudkitty.storage.exceptions.InvalidQuery: for bad
            arguments (negative offset, limit < 1...). A window whose
            begin is not before its end is no error: it holds nothing.
        """

    @abc.abstractmethod
    def delete(self, begin=None, end=None, filters=None):
        """Delete the points of a window; a missing bound is open.

        ``delete()`` with no arguments deletes everything.

        :param begin: start of the window (inclusive) or None.
        :param end: end of the window (exclusive) or None.
        :param filters: as for :meth:`retrieve`.
        :returns: the number of points deleted, when the backend knows it,
            else None.
        :raises cloudkitty.storage.exceptions.InvalidQuery: for bad
            arguments.
        """

    @abc.abstractmethod
    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        """Return the sums of qty and price, grouped.

        :param groupby: entries among ``type``, any groupby/metadata key,
            ``time`` (one bucket per distinct frame start) and ``time-d``,
            ``time-w``, ``time-m``, ``time-y`` (as upstream CloudKitty: by
            the day of the year, the week of the year from Sunday, the
            month, the year, of the UTC frame start; the value alone makes
            the group, so day 5 of two years is one group).
        :type groupby: list of str
        :param begin: as for :meth:`retrieve`.
        :param end: as for :meth:`retrieve`.
        :param metric_types: as for :meth:`retrieve`.
        :param filters: as for :meth:`retrieve`.
        :param custom_fields: None, or ``'FUNC(field) AS alias, ...'`` with
            FUNC among sum, min, max, avg, count and field qty or price.
        :type custom_fields: str
        :param offset: index of the first group of the page.
        :param limit: number of groups in a page (>= 1).
        :param paginate: False returns every group.
        :returns: ``{'total': <number of groups>, 'results': [{'begin':
            datetime, 'end': datetime, 'qty': Decimal, 'rate': Decimal,
            <one key per groupby entry>}, ...]}``, keys in that order, as
            upstream's. ``begin``/``end`` are the query window, or the
            bucket when grouping by ``time`` (which has no key of its own).
            ``time-d``, ``-w``, ``-m``, ``-y`` have upstream's keys
            ``day_of_the_year``, ``week_of_the_year``, ``month`` and
            ``year``, with str values (``'5'``, ``'01'``, ``'3'``,
            ``'2026'``). A missing groupby key groups as ``''``; values
            keep their type. Results are sorted by the groupby values in
            the order given (calendar values as numbers), then by begin.
            With ``custom_fields`` the aliases replace ``qty`` and
            ``rate``.
        :raises cloudkitty.storage.exceptions.InvalidQuery: for bad
            arguments.
        """

    def iter_points(self, begin=None, end=None, filters=None,
                    metric_types=None, batch_size=1000):
        """Yield every matching point, in :meth:`retrieve`'s order.

        Memory stays bounded by ``batch_size`` points whatever the number
        of points, so that exports and migrations can walk any store. This
        default reads :meth:`retrieve` pages one after the other, whose
        cost grows with the offset on most backends; backends that can
        stream (the SQL backend reads through a server-side cursor)
        override it. Points pushed while the iteration runs may or may not
        be seen.

        :param begin: as for :meth:`retrieve` (defaults included).
        :param end: as for :meth:`retrieve`.
        :param filters: as for :meth:`retrieve`.
        :param metric_types: as for :meth:`retrieve`.
        :param batch_size: points read from the backend at a time (>= 1).
        :returns: an iterator of ``(start, end, type, DataPoint)``; close
            it (or exhaust it) to release what it holds.
        :raises cloudkitty.storage.exceptions.InvalidQuery: for bad
            arguments (at the latest on the first ``next()``).
        """
        offset = 0
        while True:
            page = self.retrieve(begin=begin, end=end, filters=filters,
                                 metric_types=metric_types, offset=offset,
                                 limit=batch_size)
            # NOTE: a page's frames come by start, each with its points
            # in order, so flattening them keeps retrieve()'s order.
            rows = [(frame.start, frame.end, type_, point)
                    for frame in page['dataframes']
                    for type_, point in frame.iterpoints()]
            yield from rows
            offset += len(rows)
            if len(rows) < batch_size or offset >= page['total']:
                return

    def wait_until_visible(self, timeout=600.0):
        """Return once every point pushed so far is visible to reads.

        For backends with ``features.eventually_consistent`` that process
        what they accepted later (Gnocchi's metricd). This default returns
        at once: what push() returned from is readable.

        :param timeout: seconds to wait at most.
        :raises cloudkitty.storage.exceptions.StorageError: when the
            backend is still busy after ``timeout``.
        """

    def describe(self):
        """Say where the store is and, if the backend can tell, its size.

        This default reports the backend's ``location`` attribute, if it
        has one, and no size.

        :rtype: StoreDescription
        """
        return StoreDescription(location=getattr(self, 'location', None))

    def close(self):
        """Release the connections the backend holds; idempotent.

        The storage may still be used afterwards: it reconnects on demand.
        """

    def get_retention(self):
        """Return how long rated data is kept.

        :returns: ``[storage] retention_period`` hours.
        :rtype: datetime.timedelta
        """
        return datetime.timedelta(hours=self.conf.storage.retention_period)

    def get_tenants(self, begin=None, end=None):
        """Return the scopes rated between ``begin`` and ``end``.

        Kept for upstream CloudKitty's v1 API, which reads them from
        upstream's state manager (its own database, not this storage).

        :raises cloudkitty.storage.exceptions.NotSupported: when upstream
            CloudKitty is not installed.
        """
        try:
            storage_state = importlib.import_module('cloudkitty.storage_state')
        except ImportError as exc:
            raise exceptions.NotSupported(
                self.name, 'get_tenants',
                'it reads upstream CloudKitty\'s state manager, which is '
                'not installed') from exc
        return storage_state.StateManager().get_tenants(begin, end)

    def parse_groupby_syntax_to_groupby_elements(self, groupbys):
        """Map upstream's ``time-<x>`` groupby entries to label names.

        Upstream's own backends group ``time-d``, ``-w``, ``-m``, ``-y`` by
        the ``day_of_the_year``, ``week_of_the_year``, ``month`` and
        ``year`` labels its collectors add to every point; this returns
        ``groupbys`` with those entries replaced. This library's backends
        compute those values from the frame start instead (see
        :meth:`total`), so they do not call it. Its log lines and error
        text are upstream's, which upstream's tests check.

        :param groupbys: a list of groupby entries, or None.
        :returns: the list with ``time-<x>`` entries replaced (or
            ``groupbys`` itself when empty).
        :raises werkzeug.exceptions.BadRequest: for an unknown
            ``time-<x>`` entry (an HTTP 400 in CloudKitty's API).
        """
        if not groupbys:
            LOG.debug("No groupby to process syntax.")
            return groupbys
        parsed = []
        for entry in groupbys:
            parts = entry.split('-') if 'time' in entry else [entry]
            if len(parts) == 2:
                label = self.TIME_COMMANDS_MAP.get(parts[1])
                if label is None:
                    raise http_exceptions.BadRequest(
                        "Invalid groupby time option. There is no groupby "
                        "processing for [%s]." % entry)
                LOG.debug("Replacing API groupby time command [%s] with "
                          "internal groupby command [%s].", entry, label)
                entry = label
            elif len(parts) > 2:
                LOG.warning("The groupby [%s] command is not expected for "
                            "storage backend [%s]. Therefore, we leave it "
                            "as is.", entry, self)
            parsed.append(entry)
        return parsed


def _checked(name, method):
    """Wrap the backend method ``name`` to check its arguments first.

    One of :attr:`BaseStorage.PAUSED_METHODS` then runs with the cyclic
    garbage collector paused.
    """
    paused = name in BaseStorage.PAUSED_METHODS

    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        args, kwargs = self.check_arguments(name, *args, **kwargs)
        if not paused:
            return method(self, *args, **kwargs)
        with bulk.no_cyclic_gc():
            return method(self, *args, **kwargs)
    checked._checked = True
    return checked


# NOTE: one check per checked method, with the contract method's signature
# (a unit test keeps them equal), so that Python itself binds positional
# and keyword arguments alike, and refuses unknown ones, at no cost. Each
# validates with query.py; only push returns something: its frames, as a
# list.

def _check_push(storage, dataframes, scope_id=None, idempotency_key=None):
    frames = query_mod.validate_dataframes(dataframes)
    query_mod.validate_idempotency_key(idempotency_key, storage)
    return frames


def _check_retrieve(storage, begin=None, end=None, filters=None,
                    metric_types=None, offset=0, limit=1000, paginate=True):
    query_mod.validate_retrieve(begin, end, filters, metric_types, offset,
                                limit, paginate)


def _check_total(storage, groupby=None, begin=None, end=None,
                 metric_types=None, filters=None, custom_fields=None,
                 offset=0, limit=1000, paginate=True):
    query = query_mod.validate_total(groupby, begin, end, metric_types,
                                     filters, custom_fields, offset, limit,
                                     paginate)
    query_mod.check_features(query, storage, 'total')


def _check_delete(storage, begin=None, end=None, filters=None):
    query = query_mod.validate_delete(begin, end, filters)
    query_mod.check_features(query, storage, 'delete')


def _check_iter_points(storage, begin=None, end=None, filters=None,
                       metric_types=None, batch_size=1000):
    query_mod.validate_iter_points(begin, end, filters, metric_types,
                                   batch_size)


_CHECKS = {'push': _check_push, 'retrieve': _check_retrieve,
           'total': _check_total, 'delete': _check_delete,
           'iter_points': _check_iter_points}
