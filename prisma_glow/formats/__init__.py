"""Locale format overrides (``FORMAT_MODULE_PATH``): times on the 24-hour clock, to the minute.

en-GB's defaults print "28 Nov 2026, 1 a.m." (no minutes on the hour) in the admin's lists, where the
custom pages say "28 Nov 2026 01:00"; an audit log needs the minute.
"""
