"""Near-miss (ヒヤリハット) cases: filed by anyone with a sign-in, reviewed and shared by
supervisors, analysed, imported and exported, sent as a monthly digest (see hub.nearmiss.service)."""
