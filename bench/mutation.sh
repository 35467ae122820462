#!/usr/bin/env bash
# Mutation testing of the lab's pure modules with mutmut (issue 26): each mutant (a small change to
# the code) must make a test fail. Slow (tens of minutes on 2 cores): run by hand, never in CI.
#   bash bench/mutation.sh                 # every module below, one after the other
#   bash bench/mutation.sh protocol        # one module (a name below)
# Needs the mutation extra: .venv/bin/pip install -e '.[dev,mutation]'. MUTMUT_WORKERS (default 2)
# sets how many mutants are tested at once. The survivors are listed at the end (`mutmut show NAME`
# prints one's diff); the configuration (modules, test files) is [tool.mutmut] in pyproject.toml.
set -euo pipefail
set -f  # the module globs below are mutmut's (mutant names), never the shell's
cd "$(dirname "$0")/.."
MUTMUT=${MUTMUT:-.venv/bin/mutmut}
WORKERS=${MUTMUT_WORKERS:-2}
declare -A MODULES=(
  [protocol]="gengap_tui.protocol.*"
  [control]="gengap_tui.control.*"
  [config]="gengap_tui.config.*"
  [runs]="gengap_tui.runs.*"
  [state]="gengap_tui.tui.state.*"
  [plots]="gengap_tui.tui.plots.*"
  [texts]="gengap_tui.tui.texts.*"
  [early_stopping]="gengap_tui.core.early_stopping.*"
  # tour.py: its parsing and checking only (the rest plays a tour in the real lab)
  [tour]="gengap_tui.tui.tour.x_load* gengap_tui.tui.tour.x_parse* gengap_tui.tui.tour.x_condition* gengap_tui.tui.tour.x_available*"
)
ORDER=(protocol control state texts runs config tour plots early_stopping)
names=("${@:-${ORDER[@]}}")
globs=()
for name in "${names[@]}"; do
  [[ -n "${MODULES[$name]:-}" ]] || { echo "unknown module $name (one of: ${ORDER[*]})" >&2; exit 2; }
  globs+=(${MODULES[$name]})  # (unquoted: a module may have several; set -f keeps them from the shell)
done
# one mutmut run for them all: it generates the mutants and times the tests once. A mutant already
# tested keeps its result; rm -rf mutants/ to test everything again (after changing tests)
"$MUTMUT" run --max-children "$WORKERS" "${globs[@]}" || true
echo "== score"
.venv/bin/python bench/mutation_score.py "${names[@]}"
