"""Outputs: what people open. Interactive maps and the territory composer, white-zone reports
(HTML, CSV, XLSX), the GeoPackage, and the headless-browser helpers that check them.

The top of the data flow: may import :mod:`pipeline.analysis` and :mod:`pipeline.sources`.
"""
