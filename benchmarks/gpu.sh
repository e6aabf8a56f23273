#!/usr/bin/env bash
# The GPU numbers of RESULTS.md in one short run (JAX): the remedies against a
# predict pass (float32 and mixed_bfloat16), the callback's epoch end, zoo
# training in bf16 against float32, and zoo training against PyTorch (the
# paper's WRN-28-10, PreResNet-110, ResNeXt-29 8x64d, DenseNet-BC-100).
# Each benchmark runs in its own process under a timeout; its output goes to
# $OUT/<name>.txt (default: gpu-out/). On a machine without Keras, put the
# wheels in .whl/ first (../shared/ENVIRONMENT.md, "The GPU machine").
#
#     bash benchmarks/gpu.sh            # bash benchmarks/gpu.sh --smoke: seconds, any machine
#     ONLY="recalibrate callback" bash benchmarks/gpu.sh   # some of them
set -u
smoke=${1:-}
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
mkdir -p "$out"
if [ -d .whl ] && ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/keras-site .whl/*.whl
  export PYTHONPATH=/tmp/keras-site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
  python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
} 2>&1 | tee "$out/device.txt"
status=0
run() {  # name, seconds, command...
  local name=$1 limit=$2
  shift 2
  case " ${ONLY:-$name} " in *" $name "*) ;; *) return 0 ;; esac  # ONLY="callback torch": those only
  echo "=== $name: $*"
  timeout "$limit" "$@" $smoke >"$out/$name.txt" 2>"$out/$name.err" || { echo "($name exited $?)"; status=1; }
  grep -v "^\(WARNING\|I0000\|E0000\|W0000\)" "$out/$name.txt"
}
run recalibrate 150 python3 benchmarks/bench_recalibrate.py --repeats=5 --no_passes
# The issue's own case (WRN-16-4, 2,048 images: recalibrate_bn was 401x a predict).
run recalibrate-wrn 100 python3 benchmarks/bench_recalibrate.py --repeats=5 --no_passes \
  --model=wrn-16-4 --examples=2048
run callback 90 python3 benchmarks/bench_callback.py --repeats=2 --epochs=4
# Mixed precision (issue 27): the tools on a mixed_bfloat16 MobileNetV2, and
# bf16 vs float32 zoo training throughput (aim >= 1.8x on H100/H200 tensor cores).
run recalibrate-bf16 150 python3 benchmarks/bench_recalibrate.py --repeats=5 --no_passes \
  --dtype_policy=mixed_bfloat16
run precision 300 python3 benchmarks/bench_precision.py --models=wrn-28-10,preresnet-110 \
  --batch=128 --steps=20 --repeats=3
# The paper's four networks, one block each, in one process (--smoke: wrn-10-1 only).
run torch 240 python3 benchmarks/bench_torch.py --model=wrn-28-10,preresnet-110,resnext-29-8x64d,densenet-bc-100-12
exit $status
