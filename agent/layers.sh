#!/usr/bin/env bash
# layers.sh: the include rule of the source tree, checked on every build.
#
# agent/ is a stack of layers, one folder each. A file may include headers
# of its own folder and of the layers listed for it below, nothing else:
# a lower layer never sees an upper one, and no layer sees a component.
# Components (receivers/, processors/, exporters/, extensions/) include
# agent/ headers and the headers of their own folder, never each other's.
# agent/main.c sits on top and may include any layer.
#
# Prints every include that breaks the rule as file:line: and exits 1.
set -u
cd "$(dirname "$0")/.."

declare -A allow=(
    [base]=""
    [config]="base"
    [telemetry]="base"
    [model]="base config"
    [net]="base config telemetry model"
    [ottl]="base config model"
    [store]="base config telemetry model"
    [export]="base config telemetry model"
    [pipeline]="base config telemetry model net ottl store export"
)
layers="${!allow[*]}"
bad=0

complain() { echo "$1: $2" >&2; bad=1; }

# check FILE ALLOWED-LAYERS OWN-DIR
check() {
    local f=$1 ok=$2 own=$3 n=0 line inc top
    while IFS= read -r line; do
        n=$((n + 1))
        [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]] || continue
        inc=${BASH_REMATCH[1]}
        case $inc in
        *.pb-c.h | revision.h) continue ;; # generated into the build tree
        esac
        if [[ $inc != */* ]]; then
            [ -n "$own" ] && [ -f "$own/$inc" ] && continue
            complain "$f:$n" "\"$inc\": include agent headers by layer (\"model/batch.h\"), or a header of this folder"
            continue
        fi
        top=${inc%%/*}
        if [[ " $layers " != *" $top "* ]] || [ ! -f "agent/$inc" ]; then
            complain "$f:$n" "\"$inc\" is not an agent/ header; components never include each other"
            continue
        fi
        [[ " $ok " == *" $top "* ]] && continue
        complain "$f:$n" "layer ${f#agent/} may not include \"$inc\" (it may include: $ok)"
    done <"$f"
}

for dir in agent/*/; do
    l=$(basename "$dir")
    [ "$l" = proto ] && continue
    if [ -z "${allow[$l]+set}" ]; then
        complain "$dir" "a folder of agent/ that layers.sh does not know; add it to the table"
        continue
    fi
    for f in "$dir"*.[ch]; do
        [ -e "$f" ] && check "$f" "$l ${allow[$l]}" "${dir%/}"
    done
done
check agent/main.c "$layers" agent
for f in receivers/*/*.[ch] processors/*/*.[ch] exporters/*/*.[ch] extensions/*/*.[ch]; do
    [ -e "$f" ] && check "$f" "$layers" "$(dirname "$f")"
done
exit $bad
