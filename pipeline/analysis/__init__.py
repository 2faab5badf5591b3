"""Analysis: the diagnosis itself, from the commune table to the white-zone priority.

Communes and their adjacency, CPTS perimeters, coverage (white zones, overlaps), supply
indicators, candidate territories (regionalization), health profile and priority. Reads tables
from :mod:`pipeline.sources`, never imports :mod:`pipeline.outputs`.
"""
