"""Diagnosis of French primary-care territories (CPTS): coverage, white zones, candidate
territories.

The package is laid out in the order the data flows; imports only run downward:

* foundations at the root, used by every part: :mod:`pipeline.config` (settings, validated in one
  place), :mod:`pipeline.errors`, :mod:`pipeline.io` (safe writes, manifests, caches),
  :mod:`pipeline.progress`, :mod:`pipeline.geo` and :mod:`pipeline.aci` (ACI tiers and funding
  table, validated with the settings);
* :mod:`pipeline.sources`: the embedded default data and the published files, and their readers;
* :mod:`pipeline.analysis`: communes, perimeters, coverage, indicators, candidate territories,
  profile and priority;
* :mod:`pipeline.outputs`: maps, composer, reports, GeoPackage;
* on top, :mod:`pipeline.stages` (the stage table, declared once) and :mod:`pipeline.cli`.

``tests/test_architecture.py`` checks these directions.
"""

__version__ = "0.1.0"
