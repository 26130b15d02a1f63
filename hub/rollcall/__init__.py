"""Roll calls by badge tap: a supervisor opens a session (a training or a 朝礼) at ``rollcall``
units, people tap in, the hub decides present / late / unexpected from each tap's time, and the
close updates the training record and the stations' policies (``service.py``); the open sessions
as the policy compile puts them on the units (``policy.py``, a leaf), the words (``messages.py``),
the roster export (``io.py``). Pages: hub/web/rollcall_pages.py."""
