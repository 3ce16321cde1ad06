#!/usr/bin/env bash
# The README's main job on the embedded synthetic dataset, end to end on CPU:
# create the environment -> draw a synthetic CelebA tree -> prepare DCGAN crops (64x64, then 32x32 as
# seed 001) -> train DCGAN (seed 001's heikka32 architecture, narrowed) for a few minutes -> sample grid
# -> interpolation strip.
# Usage: bash scripts/demo.sh [OUT_DIR]   (default: demo/; DEMO_STEPS=N to train longer)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
out=${1:-demo}
steps=${DEMO_STEPS:-800}
facegan=.venv/bin/facegan

$facegan prepare synthetic --out "$out/celeba" --n 2000 --seed 0 --force --quiet >/dev/null
$facegan prepare celeba --src "$out/celeba" --out "$out/celeba32" --recipe celeba-32 --force --quiet >/dev/null
# heikka32 narrowed to fit a few CPU minutes: G's last hidden layer 64 wide, D's first layer 16 wide (a
# weaker D keeps the two losses balanced early on); drop --width/--g-width/--batch for the paper's model.
$facegan train dcgan --data "$out/celeba32" --out "$out/run" --preset heikka32 --width 16 --g-width 64 \
  --batch 64 --steps "$steps" --sample-every 100 --ckpt-every 100 --force >/dev/null
$facegan sample --ckpt "$out/run" --n 64 --seed 0 --out "$out/samples.png" --save-latents "$out/z.npy" --force
$facegan latent interpolate --ckpt "$out/run" --latents "$out/z.npy" --pairs 0:1,2:3,4:5 --steps 10 \
  --method slerp --out "$out/interpolation.png" --force
echo "$out/run"
