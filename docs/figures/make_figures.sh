#!/bin/sh
# Redraws the README figures from the sample cases. Run from anywhere:
#     sh docs/figures/make_figures.sh
# (with carscore installed with the plots extra: pip install 'carscore[plots]';
# CARSCORE=path/to/carscore picks another command)
set -eu
cd "$(dirname "$0")/../.."
carscore=${CARSCORE:-carscore}
tp53=sample_cases/tp53_ball_two_infusions.csv
"$carscore" plot "$tp53" --kind timeline --patient TP53-BALL-01 --infusion 1 -o docs/figures/timeline.png
"$carscore" plot "$tp53" --kind kinetics -o docs/figures/kinetics.png
"$carscore" plot "$tp53" --kind counts --patient TP53-BALL-01 --infusion 2 -o docs/figures/counts.png
"$carscore" plot sample_cases --kind swimmer --sort relapse -o docs/figures/swimmer.png
