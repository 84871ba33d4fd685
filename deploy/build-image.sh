#!/usr/bin/env bash
# Builds the Bento and its image: deploy/build-image.sh gpu|cpu [bentoml containerize options...]
#   gpu (bentofile.yaml)     -> image speech-to-text:gpu, torch's CUDA build and cuBLAS 12; runs on CPU hosts too
#   cpu (bentofile.cpu.yaml) -> image speech-to-text:cpu, torch's CPU build, no CUDA library
# `make image` and `make image VARIANT=cpu` run it with the virtual environment's bentoml; tests/container too.
# Where Docker has no bridge network (this project's machines): `--opt network=host`.
set -euo pipefail
variant="${1:?usage: deploy/build-image.sh gpu|cpu [containerize options...]}"
shift
case "$variant" in
  gpu) bentofile=bentofile.yaml; bento=speech-to-text ;;
  cpu) bentofile=bentofile.cpu.yaml; bento=speech-to-text-cpu ;;
  *) echo "unknown variant $variant (gpu or cpu)" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
image="${IMAGE_NAME:-speech-to-text}:$variant"

cd "$root"
tag="$(bentoml build -f "$bentofile" --output tag | sed -n 's/^__tag__://p')"
test -n "$tag"
# BentoML 1.4 refuses a dockerfile_template outside the current directory, and containerize reads it from a copy
# of the Bento in the system's temporary directory (bentoml/BentoML#5566): containerize from there.
cd "$(python -c 'import tempfile; print(tempfile.gettempdir())')"
bentoml containerize "$tag" --image-tag "$image" "$@"
echo "built $image from $tag ($bento)"
