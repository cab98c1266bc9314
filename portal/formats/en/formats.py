"""English formats for a portal used in German shops: day-first, 24-hour clock, ISO dates.

Django's stock "en" formats are American (12/31/2027, 4 p.m.); staff who switch to English here
still work in Germany, so dates are unambiguous ISO and times use the 24-hour clock. Separators of
numbers stay English (1,234.50). German uses Django's own "de" formats (31.12.2027, 16:00).
"""

DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
TIME_FORMAT = "H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"]
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
