#!/usr/bin/env bash
# Regenerates every picture in screenshots/: SVGs with the app's own screenshot command (CPU, seeded
# runs), the tours' asciicasts, and the browser PNG of the served lab.
#   bash screenshots/regenerate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
G=${GENGAP:-$([ -x .venv/bin/gengap-tui ] && echo .venv/bin/gengap-tui || echo gengap-tui)}
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
rundir() { "$G" run "$@" --device cpu --runs-dir "$runs" --quiet | sed -n 's/^run directory: //p'; }

# 1. a fresh run of the default preset: the gap opens, early stopping fires and keeps the best epoch
"$G" screenshot default --device cpu --runs-dir "$runs" --quiet --out screenshots/default-early-stop.svg --size 120x36
# 2. label noise in observe mode: the memorization view (clean-train error, noisy labels memorized)
noisy=$(rundir label-noise --set optim.epochs=80 --set early_stopping.observe=true)
"$G" screenshot "$noisy" --view memorization --out screenshots/label-noise-memorization.svg --size 120x36
#    ... and which examples are learned when (examples.npz): the share of clean and of noisy examples
#    learned by each epoch, and the forgetting events of each (Toneva et al. 2019)
"$G" screenshot "$noisy" --view examples --out screenshots/label-noise-examples.svg --size 120x36
# 3. a comparison: the same noisy run with decoupled weight decay and with dropout, overlaid
wd=$(rundir label-noise --set optim.epochs=80 --set early_stopping.observe=true --set regularization.weight_decay=0.05 --set regularization.decoupled=true)
do=$(rundir label-noise --set optim.epochs=80 --set early_stopping.observe=true --set regularization.dropout=0.3)
"$G" screenshot "$noisy" --compare "$wd" --compare "$do" --out screenshots/compare-regularizers.svg --size 120x36
# 4. a small terminal: the panels collapse into a drawer, curves and patience counter stay
"$G" screenshot "$noisy" --view loss --log --out screenshots/small-terminal-80x24.svg --size 80x24
# 5. five seeds of the default preset stacked into one model: the mean curves with a min-max band
seeds=$(rundir default --set run.seeds=5)
"$G" screenshot "$seeds" --out screenshots/default-5-seeds.svg --size 120x36
# 6. the double-descent width sweep (20 widths trained together, ~2 minutes on 2 CPU cores)
sweep=$("$G" sweep double-descent --device cpu --runs-dir "$runs" --quiet | sed -n 's/^sweep directory: //p')
"$G" screenshot "$sweep" --out screenshots/double-descent-sweep.svg --size 120x36
#    ... and its norm-based measures against the width (D2L 5.5, exercise 1)
"$G" screenshot "$sweep" --view sweep-norms --out screenshots/double-descent-norms.svg --size 120x36
#    ... the sweep panel (what f4 sweeps) with the sweep view's cursor on width 49, and that point's curves
#    (enter on the cursor: its run directory in the run view; escape goes back)
"$G" screenshot "$sweep" --point 49 --out screenshots/sweep-panel-cursor.svg --size 120x36
"$G" screenshot "$sweep" --point 49 --open --out screenshots/sweep-point-curves.svg --size 120x36
# 6b. early stopping against label noise (observing sweep, 5 noise levels x 3 seeds, ~2.5 minutes)
esn=$("$G" sweep early-stopping-vs-noise --device cpu --runs-dir "$runs" --quiet | sed -n 's/^sweep directory: //p')
"$G" screenshot "$esn" --out screenshots/early-stopping-vs-noise.svg --size 120x36
# 7. the packaged tours, recorded as asciicasts (asciinema play screenshots/early-stopping.cast)
for t in early-stopping memorization double-descent; do
  "$G" tour "$t" --record "screenshots/$t.cast" --size 120x36 --runs-dir "$runs"
done
# 8. the lab served to a browser (gengap-tui serve), in headless Chromium at 1280x800: the browser test
#    writes its picture here (needs '.[serve,browser-tests]' and /usr/bin/chromium; skipped without them)
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
GENGAP_UPDATE_SCREENSHOTS=1 "$PY" -m pytest -q tests/test_browser.py -k draws
ls -l screenshots/*.svg screenshots/*.cast screenshots/*.png
