"""The mutation score per module from mutmut's results (mutants/*.meta), as bench/mutation.sh
ran it: killed (a test failed, or the mutant hung past mutmut's timeout) over all mutants tested.
Usage: python bench/mutation_score.py [MODULE ...] (bench/mutation.sh's names; default: all)."""

import fnmatch
import json
import sys
from pathlib import Path

MODULES = {
    "protocol": ("gengap_tui/protocol.py", ["*"]),
    "control": ("gengap_tui/control.py", ["*"]),
    "config": ("gengap_tui/config.py", ["*"]),
    "runs": ("gengap_tui/runs.py", ["*"]),
    "state": ("gengap_tui/tui/state.py", ["*"]),
    "plots": ("gengap_tui/tui/plots.py", ["*"]),
    "texts": ("gengap_tui/tui/texts.py", ["*"]),
    "early_stopping": ("gengap_tui/core/early_stopping.py", ["*"]),
    "tour": ("gengap_tui/tui/tour.py", ["*.x_load*", "*.x_parse*", "*.x_condition*", "*.x_available*"]),
}
KILLED = {1, 3, -24, 24, 36, 152, 255}  # mutmut's killed and timeout exit codes
NO_TESTS = {5, 33}


def score(name: str) -> tuple[int, int, int, list[str]]:
    path, globs = MODULES[name]
    meta = Path("mutants") / (path + ".meta")
    if not meta.is_file():
        return 0, 0, 0, []
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    mine = {k: c for k, c in codes.items() if any(fnmatch.fnmatch(k, g) for g in globs)}
    tested = {k: c for k, c in mine.items() if c is not None}
    killed = sum(c in KILLED for c in tested.values())
    survivors = sorted(k for k, c in tested.items() if c not in KILLED)
    return killed, len(tested), len(mine), survivors


def main(names: list[str]) -> int:
    names = names or list(MODULES)
    all_killed = all_tested = 0
    print(f"{'module':<16}{'killed':>8}{'tested':>8}{'score':>8}")
    for name in names:
        killed, tested, total, survivors = score(name)
        all_killed, all_tested = all_killed + killed, all_tested + tested
        pct = f"{100 * killed / tested:.1f}%" if tested else "-"
        print(f"{name:<16}{killed:>8}{tested:>8}{pct:>8}" + (f"  ({total - tested} not run)" if total > tested else ""))
        for s in survivors:
            print(f"    survived: {s}")
    if all_tested:
        print(f"{'all':<16}{all_killed:>8}{all_tested:>8}{100 * all_killed / all_tested:>7.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
