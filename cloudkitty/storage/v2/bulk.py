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
"""What the backends share to handle a push of many points at once."""

import contextlib
import gc


@contextlib.contextmanager
def no_cyclic_gc():
    """Pause the cyclic garbage collector around the work of a push.

    Encoding a push allocates a few container objects per point, which
    live until the push ends, and no reference cycle. CPython starts a
    collection of the oldest generation whenever the objects that
    survived younger ones grow by a quarter of the older ones: with the
    collector on, a push of 10,000 points triggers about one, each
    walking every live object of the process, and a million points
    pushed in pushes of 10,000 spent a fifth of their CPU in the
    collector. Reference counting still frees what the push lets go.

    The collector is turned back on only if it was on: in a process
    where another thread (or the application) turned it off, it stays
    off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
