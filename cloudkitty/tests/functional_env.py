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
"""Helpers shared by the test suites: environment switches and servers.

Two environment variables steer the functional tests:

``CLOUDKITTY_FUNCTIONAL_TESTS``
    Set (to anything but ``''`` or ``0``) by tox's functional envs;
    :func:`is_functional_test` reads it.
``CLOUDKITTY_TEST_REQUIRE_BACKENDS``
    ``1`` in CI: a backend whose server is not configured or does not answer
    makes its tests fail instead of skip (:func:`backends_required`), so a
    missing server can never pass for a green run.

Each server backend reads its URL from its own variable, for example
``CLOUDKITTY_TEST_POSTGRESQL_URL``, through :func:`server_url_or_skip`.
"""

import os

import testtools

#: Set by tox's functional envs.
FUNCTIONAL_ENV = 'CLOUDKITTY_FUNCTIONAL_TESTS'
#: ``1`` turns "server missing" skips into failures.
REQUIRE_BACKENDS_ENV = 'CLOUDKITTY_TEST_REQUIRE_BACKENDS'


class BackendMissing(AssertionError):
    """A required test server is not configured or does not answer.

    An :class:`AssertionError`, so test runners report a failure (not an
    error in the test's own code) that names what to fix.
    """


def is_functional_test():
    """Tell whether the functional tests were asked for.

    :returns: True when ``CLOUDKITTY_FUNCTIONAL_TESTS`` is set to a
        non-empty value other than ``0``.
    """
    return os.environ.get(FUNCTIONAL_ENV, '').strip() not in ('', '0')


def backends_required():
    """Tell whether a missing test server is a failure rather than a skip.

    :returns: True when ``CLOUDKITTY_TEST_REQUIRE_BACKENDS=1``.
    """
    return os.environ.get(REQUIRE_BACKENDS_ENV, '').strip() == '1'


def _name(test_or_cls):
    if isinstance(test_or_cls, type):
        return test_or_cls.__name__
    return type(test_or_cls).__name__


def skip_or_fail(test_or_cls, reason):
    """Skip a test (or class), or fail it when backends are required.

    :param test_or_cls: the test case or test class, named in the message.
    :param reason: why its server cannot be used.
    :raises unittest.SkipTest: normally.
    :raises BackendMissing: when :func:`backends_required` is true.
    """
    message = '%s: %s' % (_name(test_or_cls), reason)
    if backends_required():
        raise BackendMissing('%s (%s=1 makes this a failure, not a skip)'
                             % (message, REQUIRE_BACKENDS_ENV))
    raise testtools.TestCase.skipException(message)


def server_url_or_skip(test_or_cls, env_var):
    """Return the URL of a test server from the environment.

    :param test_or_cls: the test case or test class that needs the server.
    :param env_var: the variable holding the URL, e.g.
        ``CLOUDKITTY_TEST_POSTGRESQL_URL``.
    :returns: the URL (a str).
    :raises unittest.SkipTest: when ``env_var`` is unset or empty; the reason
        names the variable.
    :raises BackendMissing: instead of skipping, when
        :func:`backends_required` is true.
    """
    url = os.environ.get(env_var, '').strip()
    if url:
        return url
    skip_or_fail(test_or_cls, '%s is not set (export the URL of a running '
                              'server to run these tests)' % env_var)


def unreachable(test_or_cls, env_var, detail):
    """Skip (or fail) because the server named by ``env_var`` did not answer.

    :param test_or_cls: the test case or test class that needs the server.
    :param env_var: the variable the server's URL came from.
    :param detail: what went wrong, without any password.
    :raises unittest.SkipTest: normally.
    :raises BackendMissing: when :func:`backends_required` is true.
    """
    skip_or_fail(test_or_cls, 'the server of %s does not answer: %s'
                 % (env_var, detail))


def answering_server_url(test_or_cls, env_var, ping):
    """Return the URL of a test server that answers ``ping(url)``.

    :func:`server_url_or_skip`, then :func:`unreachable` when
    ``ping(url)`` is false.
    """
    url = server_url_or_skip(test_or_cls, env_var)
    if not ping(url):
        unreachable(test_or_cls, env_var, url)
    return url
