"""The report layer: tables, claims, the paper comparison, figures and the page, from the result rows.

One way, bottom to top (tests/test_layers.py checks it): ``selection`` (the rows of one report, selected
once) -> ``render`` (frames as LaTeX/Markdown/HTML) -> ``tables`` -> ``claims`` -> ``paper``, ``figures``
-> ``page`` -> ``report`` (``bench report``: :func:`write_reports`). Every stage takes the report's
:class:`Selection`; no module reaches into another's private names.
"""

from .page import PAGE_HTML, PAGE_MD, open_page
from .report import write_reports
from .selection import Selection

__all__ = ["PAGE_HTML", "PAGE_MD", "Selection", "open_page", "write_reports"]
