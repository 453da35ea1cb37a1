#!/bin/bash
# mesh inject and mesh install against goldens (tests/golden/inject/): the
# emojivoto manifests (shaped like upstream's emojivoto.yml: Namespace,
# ServiceAccounts, Deployments, Services), a List (block and JSON items,
# non-ASCII text, existing init containers) and Pods (4-space indentation,
# a block scalar last, hostNetwork). Each output must be valid YAML, keep
# every input line as it was (inject only adds lines or, in flow
# collections, text), and come back unchanged from a second injection.
# Unsupported kinds pass through with a note; bad YAML is one line, exit 2.
# MESH_UPDATE_GOLDEN=1 rewrites the goldens instead (review the diff).
# Usage: inject.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
. "$(dirname "$0")/../tools/testlib.sh"
GOLD=$SRC/tests/golden/inject
PY=/usr/bin/python3
if $PY -c 'import yaml' 2> /dev/null; then
    valid_yaml() { $PY -c 'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))' "$1" 2>&1; }
else # libyaml itself, through mesh inject: a parse error is exit 2
    valid_yaml() { "$MESH" inject "$1" 2>&1 > /dev/null | grep -v "injected\|passed through"; }
fi

golden() { # NAME FILE: compare, or write with MESH_UPDATE_GOLDEN=1
    if [ "${MESH_UPDATE_GOLDEN:-}" = 1 ]; then cp "$2" "$GOLD/$1"; ok "$1 written"; return; fi
    if [ ! -f "$GOLD/$1" ]; then bad "$1: no golden (MESH_UPDATE_GOLDEN=1 writes it)"; return; fi
    diff -u "$GOLD/$1" "$2" > "$WORK/diff" && ok "$1 matches its golden" ||
        { bad "$1 differs from its golden"; head -40 "$WORK/diff"; }
}

for name in emojivoto list pod; do
    in=$GOLD/$name.yml out=$WORK/$name.out.yml
    "$MESH" inject "$in" > "$out" 2> "$WORK/$name.notes" || bad "$name: exit $?"
    golden "$name.injected.yml" "$out"
    golden "$name.notes" "$WORK/$name.notes"
    err=$(valid_yaml "$out")
    [ -z "$err" ] && ok "$name: the output is valid YAML" || bad "$name: not valid YAML: $err"
    # every line of the input is still there, in order, as it was (a JSON
    # line is edited inside: it is left out of this check)
    removed=$(diff "$in" "$out" | grep '^<' | grep -v '^< *- {')
    [ -z "$removed" ] && ok "$name: the input's lines are kept byte for byte" ||
        bad "$name: lines changed: $(head -3 <<< "$removed")"
    "$MESH" inject - < "$out" > "$WORK/$name.again.yml" 2> "$WORK/$name.again.notes"
    cmp -s "$out" "$WORK/$name.again.yml" && ok "$name: injecting again changes nothing" ||
        bad "$name: the second injection changed: $(diff "$out" "$WORK/$name.again.yml" | head -5)"
done
[ "$(grep -c '^deployment/[a-z-]* already injected$' "$WORK/emojivoto.again.notes")" = 4 ] &&
    ! grep -q '^[a-z]*/[^ ]* injected$' "$WORK/emojivoto.again.notes" &&
    ok "the second injection says 'already injected'" || bad "second notes: $(cat "$WORK/emojivoto.again.notes")"

# what the injected pods hold, read back through a real YAML parser
if $PY -c 'import yaml' 2> /dev/null; then
    got=$($PY - "$WORK/emojivoto.out.yml" <<'PYEOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d or d["kind"] != "Deployment":
        continue
    pod = d["spec"]["template"]
    spec = pod["spec"]
    proxy = spec["containers"][-1]
    init = spec["initContainers"][-1]
    env = {e["name"]: e.get("value") or e["valueFrom"]["fieldRef"]["fieldPath"] for e in proxy["env"]}
    print(d["metadata"]["name"], pod["metadata"]["annotations"]["mesh.io/inject"],
          spec["containers"][0]["name"], proxy["name"], "--transparent" in proxy["args"],
          sorted(p["containerPort"] for p in proxy["ports"]), env["MESH_NAMESPACE"], env["MESH_POD"],
          env["MESH_DEPLOYMENT"], init["name"], init["args"][0],
          init["securityContext"]["capabilities"]["add"], proxy["securityContext"]["runAsUser"])
PYEOF
)
    want="emoji enabled emoji-svc mesh-proxy True [4143, 4191] metadata.namespace metadata.name emoji mesh-init init ['NET_ADMIN', 'NET_RAW'] 2102
vote-bot enabled vote-bot mesh-proxy True [4143, 4191] metadata.namespace metadata.name vote-bot mesh-init init ['NET_ADMIN', 'NET_RAW'] 2102
voting enabled voting-svc mesh-proxy True [4143, 4191] metadata.namespace metadata.name voting mesh-init init ['NET_ADMIN', 'NET_RAW'] 2102
web enabled web-svc mesh-proxy True [4143, 4191] metadata.namespace metadata.name web mesh-init init ['NET_ADMIN', 'NET_RAW'] 2102"
    [ "$got" = "$want" ] && ok "each deployment: annotation, sidecar (ports, downward API, workload name, --transparent), init container (NET_ADMIN, NET_RAW)" ||
        { bad "injected pods differ"; echo " got: $got"; echo "want: $want"; }
fi

# an unsupported kind passes through untouched, with a note
"$MESH" inject "$GOLD/unsupported.yml" > "$WORK/unsup.out" 2> "$WORK/unsup.notes"
st=$?
cmp -s "$GOLD/unsupported.yml" "$WORK/unsup.out" && [ $st = 0 ] &&
    grep -q "^cronjob/nightly passed through: kind CronJob is not injected$" "$WORK/unsup.notes" &&
    ok "a CronJob passes through unchanged with a note" || bad "CronJob: exit $st, $(cat "$WORK/unsup.notes")"

# bad input: one line naming it, exit 2, nothing on stdout
printf 'kind: Pod\nspec: [a\nb: c\n' > "$WORK/bad.yml"
"$MESH" inject "$WORK/bad.yml" > "$WORK/bad.out" 2> "$WORK/bad.err"
st=$?
[ $st = 2 ] && [ "$(wc -l < "$WORK/bad.err")" = 1 ] && grep -q "^mesh inject: $WORK/bad.yml:3:" "$WORK/bad.err" &&
    [ ! -s "$WORK/bad.out" ] && ok "bad YAML: one line with file:line:col, exit 2" ||
    bad "bad YAML: exit $st, $(cat "$WORK/bad.err")"
"$MESH" inject "$WORK/missing.yml" > /dev/null 2> "$WORK/missing.err"
[ $? = 2 ] && [ "$(wc -l < "$WORK/missing.err")" = 1 ] && ok "a missing file: one line, exit 2" || bad "missing file: $(cat "$WORK/missing.err")"
"$MESH" inject > /dev/null 2> "$WORK/noarg.err"
[ $? = 2 ] && ok "no input: exit 2" || bad "no input: $(cat "$WORK/noarg.err")"

# mesh install: the collector's manifests, valid YAML, the kinds kubectl needs
"$MESH" install > "$WORK/install.yml" || bad "mesh install: exit $?"
golden install.yml "$WORK/install.yml"
if $PY -c 'import yaml' 2> /dev/null; then
    got=$($PY -c 'import sys, yaml; print(" ".join(d["kind"] + "/" + d["metadata"]["name"] for d in yaml.safe_load_all(open(sys.argv[1]))))' "$WORK/install.yml")
    [ "$got" = "Namespace/mesh ServiceAccount/mesh-collector Service/mesh-collector Deployment/mesh-collector" ] &&
        ok "mesh install: Namespace, ServiceAccount, Service, Deployment" || bad "mesh install: $got"
fi
"$MESH" install | "$MESH" inject - 2>&1 > /dev/null | grep -q "^deployment/mesh-collector passed through: annotated mesh.io/inject: disabled$" &&
    ok "the collector's own Deployment is not injected" || bad "the collector's Deployment would be injected"
"$MESH" install --namespace 'Bad NS' > /dev/null 2>&1; [ $? = 2 ] && ok "install: a bad namespace is exit 2" || bad "install: bad namespace accepted"
finish
