#!/usr/bin/env bash
# The README's main job on the embedded synthetic dataset, end to end on CPU:
# create the environment -> draw a synthetic CelebA tree -> prepare 64x64 DCGAN crops ->
# train DCGAN (radford64 architecture) for a few minutes -> sample grid -> interpolation strip.
# Usage: bash scripts/demo.sh [OUT_DIR]   (default: demo/; DEMO_STEPS=N to train longer)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
out=${1:-demo}
steps=${DEMO_STEPS:-600}
facegan=.venv/bin/facegan

$facegan prepare synthetic --out "$out/celeba" --n 2000 --seed 0 --force --quiet >/dev/null
$facegan prepare celeba --src "$out/celeba" --out "$out/celeba64" --crop dcgan --size 64 --force --quiet >/dev/null
# The radford64 architecture at half width (32 filters) and batch 64, so that a few CPU minutes give
# enough updates for faces to appear; drop those three options for the full pytorch/examples model.
$facegan train dcgan --data "$out/celeba64" --out "$out/run" --preset radford64 --width 32 --g-width 32 \
  --batch 64 --steps "$steps" --sample-every 100 --ckpt-every 100 --force >/dev/null
$facegan sample --ckpt "$out/run" --n 64 --seed 0 --out "$out/samples.png" --save-latents "$out/z.npy" --force
$facegan latent interpolate --ckpt "$out/run" --latents "$out/z.npy" --pairs 0:1,2:3,4:5 --steps 10 \
  --method slerp --out "$out/interpolation.png" --force
echo "$out/run"
