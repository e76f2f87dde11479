# httptape.bash - bash completion for httptape: its commands, each command's
# flags (as in its --help and httptape(1)), files for --log and the file
# arguments, pids for attach --pid, and the server's command line after
# `run --`. Installed as PREFIX/share/bash-completion/completions/httptape;
# works without the bash-completion package too (plain compgen).

# Paths, quoted and with a slash after directories as readline does.
_httptape_files() {
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$1")
}

_httptape() {
    local cur prev cmd i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()

    if ((COMP_CWORD == 1)); then
        mapfile -t COMPREPLY < <(compgen -W 'run attach collect tail replay export stats version help --version --help' -- "$cur")
        return 0
    fi
    cmd=${COMP_WORDS[1]}

    # run: after `--` the words are the server's own command line.
    if [[ $cmd == run ]]; then
        for ((i = 2; i < COMP_CWORD; i++)); do
            [[ ${COMP_WORDS[i]} == -- ]] || continue
            if ((i + 1 == COMP_CWORD)); then
                mapfile -t COMPREPLY < <(compgen -c -- "$cur")
            elif declare -F _command_offset >/dev/null; then
                _command_offset $((i + 1))
            else
                _httptape_files "$cur"
            fi
            return 0
        done
    fi

    case $prev in
    --log)
        _httptape_files "$cur"
        return 0 ;;
    --pid)
        mapfile -t COMPREPLY < <(compgen -W "$(ps -e -o pid= 2>/dev/null)" -- "$cur")
        return 0 ;;
    --max-body | --max-header | --queue | --duration | --ring-size | --address | -n | --lines | \
        --status | --path | --method | --slower-than | --grep | --top | --max-paths | --interval)
        return 0 ;;                     # a value of the user's own
    --format)
        mapfile -t COMPREPLY < <(compgen -W 'har curl otlp' -- "$cur")
        return 0 ;;
    -o | --output)
        _httptape_files "$cur"
        return 0 ;;
    esac

    local flags
    case $cmd in
    run) flags='--log --max-body --max-header --queue --help --' ;;
    attach) flags='--pid --log --max-body --max-header --queue --duration --children
                   --no-children --ring-size --kernel-stats --verbose --check --help' ;;
    collect) flags='--log --address --help' ;;
    tail) flags='-f --follow -n --lines --stats --no-stats --json --help --status --path
                 --method --slower-than --grep' ;;
    export) flags='--format -o --output --help --status --path --method --slower-than --grep' ;;
    stats) flags='-f --follow --interval --json --top --max-paths --help --status --path
                  --method --slower-than --grep' ;;
    replay) flags='--max-body --max-header --help' ;;
    *) return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$flags" -- "$cur")
    elif [[ $cmd == tail || $cmd == replay || $cmd == export || $cmd == stats ]]; then
        _httptape_files "$cur"
    fi
    return 0
}
complete -F _httptape httptape
