"""The xrt path never aborts (issue 10): no abort() call in the xrt backend.

amdxdna refuses ERT_ABORT (-EOPNOTSUPP, aie2_message.c), so xrt::run::abort()
only throws; XRT std::abort()s when a run whose command is in flight is
destroyed. The backend waits for the driver's TDR instead. This fails on any
`abort(` (run.abort(), std::abort(), ::abort()) outside comments and string
literals in server/device/xrt/, and on a `.abort` member call.
Usage: check_no_abort.py SOURCE_DIR"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
files = sorted((root / "server/device/xrt").glob("*.[ch]*"))
problems = []


def code_only(text):
    # Drop // and /* */ comments and string/char literals, keep line breaks.
    pattern = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                         re.S)
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


for f in files:
    for no, line in enumerate(code_only(f.read_text()).splitlines(), 1):
        if re.search(r"\babort\s*\(|\.\s*abort\b", line):
            problems.append(f"{f.relative_to(root)}:{no}: {line.strip()}")
if not files:
    problems.append("no sources found under server/device/xrt")
for p in problems:
    print("FAIL: abort on the xrt path:", p)
print(f"checked {len(files)} files, {len(problems)} abort calls")
sys.exit(1 if problems else 0)
