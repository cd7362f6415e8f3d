# bash completion for mmtrace(1): flags, their values (--format, --color,
# --backups, comm names from /proc/*/comm, pids, users, files) and the
# command after --. Install as share/bash-completion/completions/mmtrace.
# cmd/mmtrace/doc_test.go checks that it offers every flag mmtrace has.

_mmtrace() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local IFS=$'\n' i

    # After --: a command, then whatever it takes.
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} == -- ]]; then
            if ((i == COMP_CWORD - 1)); then
                COMPREPLY=($(compgen -c -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi
            return
        fi
    done

    case $prev in
    --format)
        COMPREPLY=($(compgen -W $'text\njson' -- "$cur"))
        return ;;
    --color)
        COMPREPLY=($(compgen -W $'auto\nalways\nnever' -- "$cur"))
        return ;;
    --backups)
        COMPREPLY=($(compgen -W $'auto\n0\n1\n2\n3\n4\n5\n6\n7\n8' -- "$cur"))
        return ;;
    --comm)
        COMPREPLY=($(compgen -W "$(cat /proc/[0-9]*/comm 2>/dev/null | sort -u)" -- "$cur"))
        return ;;
    -p | --pid)
        COMPREPLY=($(compgen -W "$(cd /proc && printf '%s\n' [0-9]*)" -- "$cur"))
        return ;;
    -u | --user)
        COMPREPLY=($(compgen -u -- "$cur"))
        return ;;
    -o | --output | -w | --write | -r | --read | --svg | --btf)
        COMPREPLY=($(compgen -f -- "$cur"))
        return ;;
    --squeeze-threshold | --ring-size | --check-status)
        return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W $'--comm\n-p\n--pid\n-u\n--user\n--format\n-o\n--output\n-w\n--write\n-r\n--read\n--squeeze-threshold\n--check\n--check-status\n--svg\n--color\n-v\n--verbose\n--no-ia32\n--lock-path\n--btf\n--ring-size\n--backups\n--probe-kernel\n--version\n-h\n--help\n--' -- "$cur"))
    fi
}
complete -F _mmtrace mmtrace
