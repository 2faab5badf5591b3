"""Sources: the embedded default data and the published files people send, and their readers.

Everything here turns bytes on disk into plain tables (codes, names, numbers) and imports nothing
from :mod:`pipeline.analysis` or :mod:`pipeline.outputs`: only the foundations at the package root
(:mod:`pipeline.errors`, :mod:`pipeline.io`, :mod:`pipeline.progress`).
"""
