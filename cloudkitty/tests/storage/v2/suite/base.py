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
"""The plumbing every mixin of the suite stands on: StorageTestBase.

It builds a fresh configuration and storage for each test, names the
hooks a backend overrides, and holds the helpers and assertions the
mixins call. It holds no test: compose it with mixins (as
:mod:`cloudkitty.tests.storage.v2.base_functional` does with all of them).
"""

import concurrent.futures
import datetime
import functools
import threading
import uuid

from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import EVER
from cloudkitty.tests.storage.v2.suite.common import INEXACT_TOLERANCE
from cloudkitty.tests.storage.v2.suite.common import month_window
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import show
from cloudkitty.tests.storage.v2.suite.common import UTC


class StorageTestBase(testtools.TestCase):
    """Hooks, helpers and assertions of the suite; it holds no test.

    Put it before the mixins of the tests to run, for example::

        class JSONFileTotalsTest(base.StorageTestBase, total.TotalTests,
                                 groupby.GroupbyTests):
            storage_backend = 'jsonfile'

    The base runs nothing itself: the loader only finds it in modules whose
    name matches ``test*.py``, which this one does not, and when it is
    collected anyway (the class imported into a test module) every test
    skips with "abstract base". The mixins are plain classes, so they are
    never collected on their own.

    Hooks, in three tiers:

    *Must override*

    ``storage_backend``
        The entry-point name of the backend (``'sqlalchemy'``).

    *May override*

    ``storage_version``
        Passed to :func:`cloudkitty.storage.get_storage` (default 2).
    ``configure_backend(self, conf)``
        Called in ``setUp``, before the storage is built, with a fresh
        :class:`oslo_config.cfg.ConfigOpts` (under an
        :class:`oslo_config.fixture.Config` fixture) on which every option
        of :func:`cloudkitty.storage.list_opts` is already registered. Set
        the backend's options with ``conf.set_override``, e.g.
        ``conf.set_override('connection', url, group='storage_sqlalchemy')``.
        ``self`` is the test, so fixtures (``self.useFixture``) are at hand.
    ``wait_for_backend(cls)``
        Classmethod called after every push and delete: return once the
        backend shows what it was sent (bounded: fail after e.g. 60 s).
        Default: return at once. Idempotent.
    ``cleanup_backend(cls)``
        Classmethod called after every test (``addCleanup``): delete all
        data the test may have left. Default: nothing. Idempotent.
    ``expected_failures``
        ``{test_method_name: reason}``: gaps that are unfinished work, not
        design (design gaps are :class:`~cloudkitty.storage.v2.Features`
        flags). Those tests run and must fail; they are reported as
        expected failures, and one that passes fails the run. A name that
        is not a test of the class is a TypeError when the class is made.
    ``make_storage(self)``
        Return a new, initialised storage instance configured like
        ``self.storage`` (the concurrency tests give one to each thread).
        Override only to pass constructor arguments.
    ``process_settings(self)``
        Return the picklable settings from which a spawned process builds
        its own storage (:func:`.concurrency.spawned_storage`); by default
        the values of every option of a group of ``self.conf``.
    ``writers``, ``pushes_per_writer``
        How many threads push at once in the concurrency tests (4), and
        how many pushes each makes (5).

    *Never override*

    ``setUp`` and the helpers: :meth:`push`, :meth:`delete`,
    :meth:`retrieve`, :meth:`totals`, :meth:`snapshot`, :meth:`mine`,
    :meth:`new_project_id`, :meth:`_run_writers`, the ``assert*`` methods
    and the data builders of :mod:`cloudkitty.tests.fixtures`.

    Data lifetime: each test pushes its own data, in the test itself, under
    fresh UUID scope and project ids; reads filter on those project ids, so
    workers sharing a server never read each other's points. Deletes by
    window alone (and ``delete()``) do reach other workers' data, so a
    shared server needs one database per worker.
    """

    storage_backend = None
    storage_version = 2
    expected_failures = {}
    #: Number of threads pushing at once.
    writers = 4
    #: Pushes per thread.
    pushes_per_writer = 5

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        unknown = sorted(name for name in cls.expected_failures
                         if not name.startswith('test_')
                         or not callable(getattr(cls, name, None)))
        if unknown:
            raise TypeError('%s.expected_failures names no test: %s'
                            % (cls.__name__, ', '.join(unknown)))

    # Hooks -----------------------------------------------------------------

    def configure_backend(self, conf):
        """Set the backend's options on ``conf`` (see the class doc)."""

    @classmethod
    def wait_for_backend(cls):
        """Return once pushed data is visible (see the class docstring)."""

    @classmethod
    def cleanup_backend(cls):
        """Delete all data in the backend (see the class docstring)."""

    def make_storage(self):
        """Return a new initialised storage configured like self.storage."""
        store = storage.get_storage(conf=self.conf,
                                    backend=self.storage_backend,
                                    version=self.storage_version)
        self.addCleanup(store.close)
        store.init()
        return store

    def process_settings(self):
        """Return what a spawned process needs to build a storage like ours.

        Picklable: the backend, the version and the value of every option
        set in a group of ``self.conf`` (the backend's own included), which
        :func:`.concurrency.spawned_storage` gives a conf of its own.
        Override only when :meth:`make_storage` passes constructor
        arguments.
        """
        options = []
        for group in self.conf:
            section = self.conf[group]
            if not isinstance(section, cfg.ConfigOpts.GroupAttr):
                continue
            for name in section:
                value = section[name]
                if value is not None:
                    options.append((group, name, value))
        return {'backend': self.storage_backend,
                'version': self.storage_version, 'options': options}

    # Plumbing --------------------------------------------------------------

    def setUp(self):
        super().setUp()
        if self.storage_backend is None:
            self.skipTest('abstract base: subclass it and set '
                          'storage_backend')
        reason = self.expected_failures.get(self._testMethodName)
        if reason is not None:
            setattr(self, self._testMethodName, functools.partial(
                self._expect_failure, reason,
                getattr(self, self._testMethodName)))
        self.conf = cfg.ConfigOpts()
        self.useFixture(config_fixture.Config(self.conf))
        for group, opts in storage.list_opts():
            self.conf.register_opts(opts, group=group)
        self.configure_backend(self.conf)
        self.storage = self.make_storage()
        self.addCleanup(type(self).cleanup_backend)
        self.scope_id = str(uuid.uuid4())
        self._project_ids = []
        self.project_id = self.new_project_id()

    def _expect_failure(self, reason, method):
        def run():
            try:
                method()
            except (self.skipException, self.failureException):
                raise
            except Exception as exc:
                raise self.failureException(
                    '%s: %s' % (type(exc).__name__, exc)) from exc
        self.expectFailure(reason, run)

    def new_project_id(self):
        """Return a fresh project id whose data this test reads back."""
        project_id = str(uuid.uuid4())
        self._project_ids.append(project_id)
        return project_id

    def mine(self, **filters):
        """Return ``filters`` restricted to ``self.project_id``."""
        return dict(filters, project_id=self.project_id)

    def push(self, frames, scope_id=None, idempotency_key=None):
        """Push ``frames`` under this test's scope, then wait for them."""
        self.storage.push(frames, scope_id=scope_id or self.scope_id,
                          idempotency_key=idempotency_key)
        self.wait_for_backend()

    def delete(self, **kwargs):
        """Call storage.delete(), wait, and return what it returned."""
        deleted = self.storage.delete(**kwargs)
        self.wait_for_backend()
        return deleted

    def retrieve(self, **kwargs):
        """Call storage.retrieve() on this test's projects."""
        kwargs.setdefault('filters', {'project_id': self._project_ids})
        result = self.storage.retrieve(**kwargs)
        for frame in result['dataframes']:
            self.assertAwareUTC(frame.start)
            self.assertAwareUTC(frame.end)
        return result

    def totals(self, **kwargs):
        """Call storage.total() on this test's projects."""
        kwargs.setdefault('filters', {'project_id': self._project_ids})
        return self.storage.total(**kwargs)

    def snapshot(self):
        """Return every point of this test's projects, sorted as rows."""
        return sorted(rows(self.retrieve(begin=EVER[0], end=EVER[1],
                                         paginate=False)['dataframes']))

    def edges(self, result):
        """Return the ``edge`` metadata of a retrieve() result, in order."""
        return [point.metadata['edge'] for frame in result['dataframes']
                for _, point in frame.iterpoints()]

    def walk_retrieve(self, limit, **kwargs):
        """Return every page of a retrieve(), as lists of rows."""
        pages = []
        offset = 0
        while True:
            page = self.storage.retrieve(offset=offset, limit=limit,
                                         **kwargs)
            page_rows = rows(page['dataframes'])
            self.assertEqual(min(limit, max(page['total'] - offset, 0)),
                             len(page_rows))
            if not page_rows:
                return pages
            pages.append(page_rows)
            offset += limit

    def calendar_window(self, entry):
        """Query arguments covering :func:`builders.calendar_frames`."""
        return {'begin': datetime.datetime(2020, 12, 1, tzinfo=UTC),
                'end': datetime.datetime(2021, 4, 1, tzinfo=UTC),
                'groupby': [entry], 'filters': self.mine()}

    def _run_writers(self, make_frames, make_key=None):
        """Push ``make_frames(writer, push)`` from every writer at once.

        :param make_key: None, or ``make_key(writer, push)`` returning the
            push's idempotency key.
        """
        stores = [self.make_storage() for _ in range(self.writers)]
        barrier = threading.Barrier(self.writers)

        def write(index, store):
            barrier.wait(timeout=60)
            for push in range(self.pushes_per_writer):
                store.push(make_frames(index, push), scope_id=self.scope_id,
                           idempotency_key=make_key and make_key(index,
                                                                 push))

        with concurrent.futures.ThreadPoolExecutor(self.writers) as pool:
            futures = [pool.submit(write, index, store)
                       for index, store in enumerate(stores)]
            for future in futures:
                future.result(timeout=300)
        self.wait_for_backend()

    @staticmethod
    def utc(results):
        """Make the naive datetimes of expected results aware UTC."""
        return [{key: value.replace(tzinfo=UTC)
                 if isinstance(value, datetime.datetime) else value
                 for key, value in result.items()} for result in results]

    # Assertions ------------------------------------------------------------

    def assertAwareUTC(self, moment):
        """Assert ``moment`` is an aware datetime in UTC."""
        self.assertIsInstance(moment, datetime.datetime)
        self.assertIsNotNone(moment.tzinfo, '%r is naive' % (moment,))
        self.assertEqual(datetime.timedelta(0), moment.utcoffset(),
                         '%r is not UTC' % (moment,))

    def assertMonthUnchanged(self, begin, end):
        """Skip when the UTC month changed while the test ran."""
        if month_window() != (begin, end):
            self.skipTest('the UTC month changed during the test')

    def assertMoneyEqual(self, expected, actual, message=''):
        """Assert two sums are equal: exactly, or within 1e-9 relative.

        The tolerance applies only to backends without ``exact_decimal``;
        it is relative to the larger magnitude (at least 1).
        """
        self.assertIsInstance(actual, D, message)
        if self.storage.features.exact_decimal:
            self.assertEqual(expected, actual, message)
            return
        scale = max(abs(expected), abs(actual), D(1))
        self.assertLessEqual(abs(expected - actual),
                             INEXACT_TOLERANCE * scale,
                             '%s != %s %s' % (expected, actual, message))

    def assertTotalEqual(self, expected, actual, message=''):
        """Assert two total() answers are equal (money per exact_decimal).

        Values that are Decimals in ``expected`` are money and compared
        with :meth:`assertMoneyEqual`; every other value must be equal, and
        returned datetimes aware UTC.
        """
        self.assertEqual(expected['total'], actual['total'], message)
        self.assertEqual(len(expected['results']), len(actual['results']),
                         '%s\n%r' % (message, actual['results']))
        for want, got in zip(expected['results'], actual['results']):
            self.assertEqual(sorted(want), sorted(got), message)
            for key, value in want.items():
                if isinstance(value, D):
                    self.assertMoneyEqual(value, got[key],
                                          '%s[%r] %s' % (key, want, message))
                    continue
                if isinstance(value, datetime.datetime):
                    self.assertAwareUTC(got[key])
                # NOTE: by type and repr: 1 == 1.0 == True, 0.0 == -0.0.
                self.assertEqual((type(value), repr(value)),
                                 (type(got[key]), repr(got[key])),
                                 '%r: %r %s' % (key, got, message))

    def assertOracle(self, frames, message='', **kwargs):
        """Assert total(**kwargs) equals the oracle's over ``frames``.

        ``frames`` must be every frame the test pushed that ``kwargs``
        can select.
        """
        kwargs.setdefault('filters', {'project_id': self._project_ids})
        paging = {'paginate': False} if 'limit' not in kwargs else {}
        expected = query.evaluate_total(
            query.validate_total(**dict(kwargs, **paging)), frames)
        actual = self.storage.total(**dict(kwargs, **paging))
        self.assertTotalEqual(expected, actual, message or repr(kwargs))

    def assertInvalid(self, argument, call, *args, **kwargs):
        """Assert ``call`` raises InvalidQuery and changes no stored data.

        :param argument: the ``argument`` the error must name, or None.
        """
        before = self.snapshot()
        described = '%s(%s)' % (call.__name__, ', '.join(
            [show(arg) for arg in args]
            + ['%s=%s' % (key, show(value))
               for key, value in sorted(kwargs.items())]))
        try:
            result = call(*args, **kwargs)
        except exceptions.InvalidQuery as exc:
            self.assertIsInstance(exc, ValueError)
            if argument is not None:
                self.assertEqual(argument, exc.argument,
                                 '%s: %s' % (described, exc))
        else:
            self.fail('%s returned %r instead of raising InvalidQuery'
                      % (described, result))
        self.wait_for_backend()
        self.assertEqual(before, self.snapshot(),
                         '%s changed the store' % described)
