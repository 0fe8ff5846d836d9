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
"""The measuring commands, ``bench`` and ``load``, and what they share.

They live apart from the everyday commands (``cloudkitty.cli.admin``,
``data``, ``migrate``, ``demo``) because they are half of the CLI's code and
none of what an operator runs daily needs them; they stay inside
:mod:`cloudkitty.cli` because they build their stores from the command's
configuration (:func:`cloudkitty.cli.main.load_storage`) and write through
its scratch targets.

* :mod:`~cloudkitty.cli.perf.workload`: the one generator of rated points
  with exact sums, used by both commands;
* :mod:`~cloudkitty.cli.perf.bench`: ``bench``, timed queries checked
  against the workload's sums;
* :mod:`~cloudkitty.cli.perf.load`: ``load``, writer and reader processes
  at once;
* :mod:`~cloudkitty.cli.perf.anchor`: ``bench --anchor``, the same
  workload on upstream CloudKitty's InfluxStorage (through
  :mod:`~cloudkitty.cli.perf.upstream_driver`, run by upstream's own
  Python) or on the bare database driver, in the same run;
* :mod:`~cloudkitty.cli.perf.scratch`: where they write, and the cleanup;
* :mod:`~cloudkitty.cli.perf.plot`: ``bench --plot``.

What they need to know about a store comes from the contract only:
:meth:`cloudkitty.storage.v2.BaseStorage.describe` (where it is, its size)
and ``Features.float_tolerance`` (how far a float sum may be from the exact
one, compared by :func:`cloudkitty.storage.v2.money.agrees`).
"""
