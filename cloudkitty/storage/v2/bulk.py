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
import threading

# NOTE: per thread: whether one of its pauses turned the collector off
# (and will turn it on again), which is when a wait may let it run.
_paused = threading.local()


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
    Reads that build many objects at once pause it too (see
    :attr:`cloudkitty.storage.v2.BaseStorage.PAUSED_METHODS`): a total()
    of 10,200 groups on SQLite spent a quarter of its time in it.

    The collector is turned back on only if it was on: in a process
    where another thread (or the application) turned it off, it stays
    off. Let go of the push's objects inside the block: the first
    collection after it walks every container still alive that it
    allocated (a push of 10,000 points: about 2 ms).
    """
    enabled = gc.isenabled()
    gc.disable()
    outer = enabled and not paused_here()
    if outer:
        _paused.owner = True
    try:
        yield
    finally:
        if outer:
            _paused.owner = False
        if enabled:
            gc.enable()


@contextlib.contextmanager
def collector_runs_while_waiting():
    """Let the collector run while a paused push waits for others.

    A push may wait a long time with nothing of its own to do: for a
    write lease another process holds, or between attempts after a
    conflict. The collector is off for the whole process meanwhile, so
    the application's other threads would go without collections. Inside
    this block it is on again, if :func:`no_cyclic_gc` of this thread
    turned it off; otherwise (no pause, or the collector was already off)
    nothing changes. A collection that runs then walks the push's
    points once: a cost paid only by a push that waits anyway.
    """
    if not paused_here() or gc.isenabled():
        yield
        return
    gc.enable()
    try:
        yield
    finally:
        gc.disable()


def paused_here():
    """Tell whether :func:`no_cyclic_gc` of this thread turned it off."""
    return getattr(_paused, 'owner', False)


@contextlib.contextmanager
def helping(paused):
    """Run a helper thread's work on behalf of a paused push.

    Inside, :func:`collector_runs_while_waiting` of this thread turns the
    collector on while it waits, as it would in the push's own thread.

    :param paused: :func:`paused_here` of the push's thread.
    """
    _paused.owner = paused
    try:
        yield
    finally:
        _paused.owner = False
