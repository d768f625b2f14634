#!/usr/bin/env bash
# Refreshes the GraphiQL assets the API serves (functions/api/assets/vendor), from the npm
# registry at the pinned versions below, gzipped as they are served. Run after changing a
# version; the page never loads anything from elsewhere.
set -euo pipefail

graphiql=3.8.3
react=18.3.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/functions/api/assets/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "graphiql@$graphiql" "react@$react" "react-dom@$react" >/dev/null
for tgz in *.tgz; do mkdir -p "${tgz%.tgz}" && tar xzf "$tgz" -C "${tgz%.tgz}"; done
mkdir -p "$out"
gzip -9nc "graphiql-$graphiql/package/graphiql.min.js" >"$out/graphiql.min.js.gz"
gzip -9nc "graphiql-$graphiql/package/graphiql.min.css" >"$out/graphiql.min.css.gz"
gzip -9nc "react-$react/package/umd/react.production.min.js" >"$out/react.production.min.js.gz"
gzip -9nc "react-dom-$react/package/umd/react-dom.production.min.js" >"$out/react-dom.production.min.js.gz"
(cd "$out" && sha256sum ./*.gz >SHA256SUMS)
echo "vendored graphiql $graphiql and react $react into $out"
