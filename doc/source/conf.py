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
"""Sphinx configuration of the cloudkitty-storage documentation.

Build it with ``tox -e docs``, or
``sphinx-build -W -b html doc/source doc/build/html``.
"""

import os
import sys

# NOTE: autodoc imports the package; this makes a source checkout work
# even when it is not installed (the CLI pages need it installed).
sys.path.insert(0, os.path.abspath(os.path.join('..', '..')))

extensions = [
    'sphinx.ext.autodoc',
    'openstackdocstheme',
    'oslo_config.sphinxext',
    'stevedore.sphinxext',
    'cliff.sphinxext',
]

project = 'cloudkitty-storage'
copyright = 'cloudkitty-storage developers'
root_doc = 'index'
exclude_patterns = ['build']
pygments_style = 'native'

# -- openstackdocstheme ------------------------------------------------------
html_theme = 'openstackdocs'
openstackdocs_repo_name = 'cloudkitty/cloudkitty-storage'
openstackdocs_auto_name = False
openstackdocs_use_storyboard = False
openstackdocs_bug_project = 'cloudkitty-storage'
openstackdocs_bug_tag = 'doc'
openstackdocs_pdf_link = False

# -- autodoc -----------------------------------------------------------------
autodoc_member_order = 'bysource'
autodoc_default_options = {'show-inheritance': True}

# -- cliff -------------------------------------------------------------------
autoprogram_cliff_application = 'cloudkitty-storage'
# NOTE: the output-formatter options of every listing command are
# described once in prose, not repeated per command.
autoprogram_cliff_ignored = [
    '--help', '--format', '--column', '--max-width', '--fit-width',
    '--print-empty', '--noindent', '--quote', '--sort-column',
    '--sort-ascending', '--sort-descending',
]
