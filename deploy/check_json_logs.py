"""Read a container's log on stdin; exit 0 when every line is one JSON object with time, level,
logger and message (portal/logformat.py), else print the first offending lines and exit 1."""

import json
import sys

lines = [line for line in sys.stdin if line.strip()]
bad = []
for line in lines:
    try:
        entry = json.loads(line)
        if not (isinstance(entry, dict) and {"time", "level", "logger", "message"} <= entry.keys()):
            raise ValueError("missing keys")
    except ValueError:
        bad.append(line.rstrip()[:200])
print(f"   {len(lines)} lines, {len(bad)} not JSON")
for line in bad[:3]:
    print(f"   {line}")
sys.exit(1 if bad or not lines else 0)
