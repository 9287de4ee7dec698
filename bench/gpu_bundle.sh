#!/usr/bin/env bash
# Prepares .tools/ (git-ignored) so that `deno task gpu-check` runs on a GPU
# machine with no network: the deno binary compressed with xz -9 and the
# project's npm packages (node_modules) as an xz tarball, about 35 MB together.
# Run it from a machine with network, in the repository; it prints the command
# to run on the GPU machine, in a copy of the repository that holds .tools/.
# See docs/GPU.md.
set -euo pipefail
cd "$(dirname "$0")/.."

deno_bin=$(command -v deno || true)
if [ -z "$deno_bin" ]; then
  deno_bin=$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())')
fi
case "$(uname -m)" in
  x86_64) ;;
  *) echo "gpu_bundle: this deno is for $(uname -m); the GPU machines run x86-64: bundle on an x86-64 machine" >&2
     exit 1 ;;
esac

mkdir -p .tools
echo "compressing $deno_bin ($("$deno_bin" --version | head -1))" >&2
xz -9 -T0 -c "$deno_bin" > .tools/deno.xz
"$deno_bin" install >&2
# Deno touches its own bookkeeping files under node_modules/.deno while other
# deno processes run; tar's status 1 ("a file changed as we read it") is harmless.
tar --warning=no-file-changed -cf .tools/node_modules.tar node_modules || [ $? -eq 1 ]
xz -9 -T0 -f .tools/node_modules.tar
du -sh .tools/deno.xz .tools/node_modules.tar.xz >&2

cat <<'EOF'
On the GPU machine, in the repository root (with .tools/ beside it):

  xz -dc .tools/deno.xz > /tmp/deno && chmod +x /tmp/deno && tar -xJf .tools/node_modules.tar.xz && DENO_NO_UPDATE_CHECK=1 RUST_BACKTRACE=0 /tmp/deno task gpu-check
EOF
