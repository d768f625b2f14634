# Sourced by the build scripts: installs the pinned cargo-lambda and zig
# (scripts/build-requirements.txt) into .venv once, and again when the pins change.
# Expects `root` to be the repository.
venv="$root/.venv"
requirements="$root/scripts/build-requirements.txt"
stamp="$venv/.build-requirements"
if ! { [ -f "$stamp" ] && cmp -s "$stamp" "$requirements"; }; then
  echo "gantry: installing cargo-lambda and zig into .venv" >&2
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi
