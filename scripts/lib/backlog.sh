# shellcheck shell=bash
# Part 6 of scripts/bench (`--backlog`, and in a full run): a backlog drains at the partner's
# pace (issue 19), measured for each way work reaches the worker:
#
#   queued    N provision jobs already queued (as the drains of part 1);
#   requests  N `provision` rows in mod_jetpack_requests (requested_by `module`, created_at
#             UTC_TIMESTAMP(6)): what the PHP module's Create records; no jobs;
#   scan      N Pending services of a Jetpack product with "Do not automatically setup" whose
#             orders are Active (paid, dated now), none requested, the adoption tables empty:
#             the first scan discovers them (JETPACK_ADOPT=true; `run` at the default interval).
#
# Each path through `run` (timed from just before the start to the last finished_at, the
# script waiting for N "job updated" lines; stopped after BENCH_BACKLOG_LIMIT seconds, default
# 120, and then measured over the jobs done by then) and `run --once` (timed until it exits),
# at concurrency 64 against the sandbox at 50 ms. Every per-job figure is per job done; each run
# also prints the most partner-API calls the sandbox saw in flight at once. queued and requests run with JETPACK_ADOPT=false
# (each path measures its own way in). Before every run each table of the worker is emptied and
# WHMCS's side (activity log, Module Queue, module log, details values, statuses) reset.
#
# Before/after: BENCH_BINS="before=/path/a/jetpack-worker after=/path/b/jetpack-worker"
# (absolute paths; default: this tree's release binary, labelled `now`), BENCH_ROUNDS rounds (default 1): each
# round runs every path and command for every binary, the binary that goes first alternating,
# so the machine's drift hits both. Each binary has its own database, built by its own
# `migrate`. BENCH_BACKLOG_N (default 5000) jobs per run. Then the original synchronous module
# (scripts/lib/original-module.php, BENCH_ORIGINAL_N orders, default 100) as the baseline.
#
# Sourced by scripts/bench after its set-up; uses its q, q_file, url_for, counters, delta, get,
# OVERHEAD, cpu_s, now_us, wait_for_lines, sandbox_latency, say, step, die, and WORK, PIDS, API,
# LATENCY_MS, WORKER, MARIADB_PID, SANDBOX_PID, MACHINE_CPU, DB_* .

BACKLOG_C=64
BACKLOG_PATHS=${BENCH_BACKLOG_PATHS:-"queued requests scan"}

# The binaries as "label path" lines, from BENCH_BINS.
backlog_bins() {
    local spec label path
    for spec in ${BENCH_BINS:-now=$WORKER}; do
        label=${spec%%=*}
        path=${spec#*=}
        [[ $label =~ ^[A-Za-z0-9_]+$ && $spec == *=* ]] ||
            die "BENCH_BINS: '$spec' is not label=path (label: letters, digits, _)"
        [ -x "$path" ] || die "BENCH_BINS: $path is not an executable"
        echo "$label $path"
    done
}

backlog_db() { echo "jetpack_bench_backlog_${1,,}"; }

# backlog_create_db LABEL BIN N: WHMCS 8's tables, one Jetpack product ("Do not automatically
# setup"), N services each with its own order (paid), migrated by BIN itself.
backlog_create_db() {
    local db
    db=$(backlog_db "$1")
    q mysql "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
    q_file "$db" tests/fixtures/whmcs-8.sql
    DATABASE_URL=$(url_for "$db") "$2" migrate >&2 || die "$2 migrate failed"
    q "$db" "
    INSERT INTO tblproducts (type, name, autosetup, servertype, configoption1, configoption2)
    VALUES ('other', 'Jetpack Premium', '', 'jetpack', 'demo-client', 'demo-secret');
    SET @pid = LAST_INSERT_ID();
    INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly) VALUES
      ('product', @pid, 'Site URL|Your WordPress site', 'text', ''),
      ('product', @pid, 'Local User', 'text', ''),
      ('product', @pid, 'Plan', 'text', ''),
      ('product', @pid, 'jetpack_provisioning_details|Jetpack Provisioning Details', 'text', '');
    INSERT INTO tblorders (id, ordernum, userid, date, status, invoiceid)
    SELECT seq, seq, 1 + seq % 1000, NOW(), 'Active', 0 FROM seq_1_to_$3;
    INSERT INTO tblhosting (id, userid, orderid, packageid, regdate, domainstatus)
    SELECT seq, 1 + seq % 1000, seq, @pid, CURDATE(), 'Active' FROM seq_1_to_$3;
    INSERT INTO tblcustomfieldsvalues (fieldid, relid, value)
    SELECT f.id, h.id, CASE WHEN f.fieldname LIKE 'Site URL%' THEN CONCAT('bench', h.id, '.example')
                            WHEN f.fieldname = 'Local User' THEN 'admin' ELSE 'premium' END
    FROM tblhosting h JOIN tblcustomfields f ON f.type = 'product' AND f.relid = h.packageid
    WHERE f.fieldname NOT LIKE 'jetpack%';
    ANALYZE TABLE tblhosting, tblorders, tblcustomfieldsvalues;" >/dev/null
}

# backlog_reset DB PATH N: every worker table emptied, WHMCS's side as before any job, then
# the path's backlog; waits for InnoDB's purge of what was deleted.
backlog_reset() {
    local db=$1 path=$2 n=$3 sql="" t
    for t in $(q "$db" "SELECT TABLE_NAME FROM information_schema.TABLES
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'mod\\_jetpack\\_%'"); do
        sql+="DELETE FROM $t;"
    done
    sql+="DELETE FROM tblactivitylog; DELETE FROM tblmodulequeue; DELETE FROM tblmodulelog;
    DELETE v FROM tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
    WHERE f.fieldname LIKE 'jetpack%';"
    case $path in
    queued) sql+="UPDATE tblhosting SET domainstatus = 'Active';
        INSERT INTO mod_jetpack_jobs (service_id, action, state, run_at, requested_by, created_at, updated_at)
        SELECT id, 'provision', 'queued', UTC_TIMESTAMP(6), 'cli', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)
        FROM tblhosting ORDER BY id LIMIT $n" ;;
    requests) sql+="UPDATE tblhosting SET domainstatus = 'Active';
        INSERT INTO mod_jetpack_requests (service_id, action, requested_by, created_at)
        SELECT id, 'provision', 'module', UTC_TIMESTAMP(6) FROM tblhosting ORDER BY id LIMIT $n" ;;
    scan) sql+="UPDATE tblhosting SET domainstatus = 'Pending';
        UPDATE tblorders SET status = 'Active', date = NOW()" ;;
    *) die "backlog: unknown path $path" ;;
    esac
    q "$db" "$sql"
    q mysql "SET GLOBAL innodb_max_purge_lag_wait = 0" 2>/dev/null || sleep 5
}

# backlog_fail LOG MESSAGE: the worker's last lines, then stops the bench.
backlog_fail() {
    echo "--- last lines of $1:" >&2
    tail -n 20 "$1" >&2
    die "$2"
}

# CPU seconds of the children a subshell waited for, from the second line of `times`.
children_cpu_s() {
    sed -n 2p "$1" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] } printf "%.2f", s }'
}

# backlog_wait LOG PID N T0_US: until LOG has N "job updated" lines (prints 0) or
# BENCH_BACKLOG_LIMIT seconds (default 120) have passed since T0_US (prints 1: stopped at the
# limit; the scan path of a worker that adopts a page per interval needs hours for 5,000).
backlog_wait() {
    local limit_us=$((${BENCH_BACKLOG_LIMIT:-120} * 1000000)) seen
    while seen=$(grep -c -- "job updated" "$1" 2>/dev/null || true); [ "${seen:-0}" -lt "$3" ]; do
        if [ $(($(now_us) - $4)) -ge "$limit_us" ]; then
            echo 1
            return 0
        fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    echo 0
}

# backlog_run ROUND LABEL BIN PATH CMD N: one measured run; prints its figures and appends
# one line to $WORK/backlog.tsv.
backlog_run() {
    local round=$1 label=$2 bin=$3 path=$4 cmd=$5 n=$6 db adopt log before after d t0 t0_us
    local db_cpu0 sb_cpu0 worker_cpu db_cpu sb_cpu wall_us done_jobs adopted="- -" pid cut=0
    db=$(backlog_db "$label")
    adopt=false
    [ "$path" = scan ] && adopt=true
    log=$WORK/backlog-$round-$label-$path-$cmd.log
    backlog_reset "$db" "$path" "$n"
    local -a env_args=(env -i PATH="$PATH" DATABASE_URL="$(url_for "$db")" JETPACK_API_BASE="$API"
        JETPACK_CONCURRENCY="$BACKLOG_C" JETPACK_ADOPT="$adopt" RUST_LOG=info)
    curl -fsS -X POST "$API/_sandbox/reset-peak" >/dev/null
    before=$(counters)
    db_cpu0=$(cpu_s "$MARIADB_PID")
    sb_cpu0=$(cpu_s "$SANDBOX_PID")
    t0=$(q "$db" "SELECT UTC_TIMESTAMP(6)")
    t0_us=$(now_us)
    if [ "$cmd" = run ]; then
        "${env_args[@]}" "$bin" run >"$log" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        cut=$(backlog_wait "$log" "$pid" "$n" "$t0_us") || backlog_fail "$log" "backlog $label $path: the worker stopped"
        wall_us=$(($(now_us) - t0_us))
        worker_cpu=$(cpu_s "$pid")
    else
        ("${env_args[@]}" "$bin" run --once >"$log" 2>&1
        rc=$?
        times >"$log.times"
        exit "$rc") || backlog_fail "$log" "backlog $label $path run --once failed"
        wall_us=$(($(now_us) - t0_us))
        worker_cpu=$(children_cpu_s "$log.times")
    fi
    db_cpu=$(awk -v a="$db_cpu0" -v b="$(cpu_s "$MARIADB_PID")" 'BEGIN { printf "%.2f", b - a }')
    sb_cpu=$(awk -v a="$sb_cpu0" -v b="$(cpu_s "$SANDBOX_PID")" 'BEGIN { printf "%.2f", b - a }')
    if [ "$cmd" = run ]; then
        kill -TERM "$pid"
        wait "$pid" || backlog_fail "$log" "backlog $label $path: the worker exited non-zero"
    fi
    after=$(counters)
    d=$(delta "$before" "$after")
    say "backlog [$label] $path ${cmd/once/run --once}: partner-API calls in flight (the sandbox's count): at most $(curl -fsS "$API/_sandbox/calls" | jq '.peak_in_flight'), on average $(curl -fsS "$API/_sandbox/calls" | jq '.mean_in_flight * 100 | round / 100') from the first call to the last (C=$BACKLOG_C)"
    if [ "$cut" = 1 ]; then
        # Stopped at the limit: the jobs done by then (not those the shutdown let finish).
        done_jobs=$(q "$db" "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'done'
            AND finished_at <= '$t0' + INTERVAL $wall_us MICROSECOND")
        [ "$done_jobs" -gt 0 ] || backlog_fail "$log" "backlog $label $path $cmd: no job done within the limit"
    else
        done_jobs=$(q "$db" "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE state = 'done'")
        [ "$done_jobs" -eq "$n" ] ||
            backlog_fail "$log" "backlog $label $path $cmd: $done_jobs of $n jobs done"
    fi
    if [ "$cmd" = run ] && [ "$cut" = 0 ]; then
        wall_us=$(q "$db" "SELECT TIMESTAMPDIFF(MICROSECOND, '$t0', MAX(finished_at)) FROM mod_jetpack_jobs")
    fi
    if [ "$path" = scan ]; then
        adopted=$(q "$db" "SELECT TIMESTAMPDIFF(MICROSECOND, '$t0', MAX(created_at)), COUNT(*)
            FROM mod_jetpack_requests WHERE requested_by = 'adopt'")
    fi
    say "backlog [$label] $path ${cmd/once/run --once}: timeline (s after the start, database clock): $(q "$db" "SELECT CONCAT(
        'first job done ', ROUND(TIMESTAMPDIFF(MICROSECOND, '$t0', MIN(j.finished_at)) / 1e6, 2),
        ', last job created ', ROUND(TIMESTAMPDIFF(MICROSECOND, '$t0', MAX(j.created_at)) / 1e6, 2),
        ', last request applied ', IFNULL(ROUND((SELECT TIMESTAMPDIFF(MICROSECOND, '$t0', MAX(r.applied_at))
            FROM mod_jetpack_requests r) / 1e6, 2), '-'),
        ', last job done ', ROUND(TIMESTAMPDIFF(MICROSECOND, '$t0', MAX(j.finished_at)) / 1e6, 2))
        FROM mod_jetpack_jobs j")"
    say "backlog [$label] $path ${cmd/once/run --once}: jobs done per 0.5 s (at the partner's pace: $((BACKLOG_C * 500 / LATENCY_MS))): $(q "$db" "SELECT GROUP_CONCAT(k ORDER BY b SEPARATOR ' ') FROM (
        SELECT FLOOR(TIMESTAMPDIFF(MICROSECOND, '$t0', finished_at) / 500000) b, COUNT(*) k
        FROM mod_jetpack_jobs WHERE state = 'done' GROUP BY b) x")"
    backlog_report "$round $label $path $cmd $n $done_jobs" "$wall_us" "$worker_cpu" "$db_cpu" "$sb_cpu" "$d" "$adopted"
}

# backlog_report "ROUND LABEL PATH CMD N DONE" WALL_US WORKER_CPU DB_CPU SANDBOX_CPU DELTA
#   "ADOPTED_US ADOPTED": prints one run's figures (per job done) and appends its line to
#   $WORK/backlog.tsv.
backlog_report() {
    local round label path cmd n k us=$2 w=$3 dbc=$4 s=$5 d=$6 adopted_us adopted tag
    read -r round label path cmd n k <<<"$1"
    read -r adopted_us adopted <<<"$7"
    tag="backlog [$label] $path ${cmd/once/run --once}"
    per_job() { awk -v d="$(get "$1" "$d")" -v o="$(get "$1" "$OVERHEAD")" -v n="$k" \
        'BEGIN { printf "%.2f", (d - o) / n }'; }
    local questions commits trips
    questions=$(per_job Questions)
    commits=$(per_job Com_commit)
    trips=$(awk -v a="$questions" -v b="$(per_job Com_stmt_prepare)" -v c="$(per_job Com_stmt_close)" \
        -v p="$(per_job Com_admin_commands)" 'BEGIN { printf "%.2f", a + b + c + p }')
    awk -v tag="$tag" -v n="$n" -v k="$k" -v c="$BACKLOG_C" -v l="$LATENCY_MS" -v us="$us" -v w="$w" \
        -v d="$dbc" -v s="$s" -v cpus="$MACHINE_CPU" 'BEGIN {
        wall = us / 1e6; ideal = k * l / 1000 / c
        if (k < n) printf "%s: STOPPED AT THE LIMIT: %d of %d jobs done in %.2f s; the figures below are for those %d\n", tag, k, n, wall, k
        printf "%s: n=%d wall %.2f s (ideal N*L/C %.2f s), efficiency %.2f, %.0f jobs/s\n", tag, k, wall, ideal, ideal / wall, k / wall
        printf "%s: cpu per job: worker %.2f ms, mariadbd %.2f ms, sandbox %.2f ms (%.0f %% of %d cores busy)\n",
            tag, w * 1000 / k, d * 1000 / k, s * 1000 / k, (w + d + s) / wall / cpus * 100, cpus }'
    say "$tag: per job: $questions sql statements, $commits commits, $trips round trips (statements + prepares + pings)"
    say "$tag: statement mix per job: select $(per_job Com_select), insert $(per_job Com_insert) + insert-select $(per_job Com_insert_select), update $(per_job Com_update), delete $(per_job Com_delete), begin $(per_job Com_begin), commit $commits, rollback $(per_job Com_rollback), set $(per_job Com_set_option), pings $(per_job Com_admin_commands), prepares $(per_job Com_stmt_prepare), new connections $(per_job Connections)"
    if [ "$adopted_us" != - ]; then
        awk -v tag="$tag" -v us="$adopted_us" -v a="$adopted" -v n="$n" 'BEGIN {
            printf "%s: last adoption request recorded %.2f s after the worker started (%d of %d recorded; database clock; target: within 10 s of the first scan)\n", tag, us / 1e6, a, n }'
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$label" "$path" "$cmd" "$k" "$us" \
        "$w" "$dbc" "$questions" "$commits" "$adopted_us" "$n" "$adopted" >>"$WORK/backlog.tsv"
}

# The original module as the baseline: its own database (the field names it expected), its
# sequence per order against the same sandbox at the same latency. Prints X ms per order, and
# sets ORIGINAL_MS.
backlog_original() {
    local n=$1 db=jetpack_bench_original out
    command -v php >/dev/null &&
        php -r 'exit(extension_loaded("curl") && extension_loaded("pdo_mysql") ? 0 : 1);' ||
        _jetpack_apt_install php-cli php-curl php-mysql || die "php with curl and pdo_mysql is required"
    q mysql "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
    q_file "$db" tests/fixtures/whmcs-8.sql
    q "$db" "
    INSERT INTO tblproducts (type, name, autosetup, servertype, configoption1, configoption2)
    VALUES ('other', 'Jetpack Premium', '', 'jetpack', 'demo-client', 'demo-secret');
    SET @pid = LAST_INSERT_ID();
    INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly) VALUES
      ('product', @pid, 'Site URL', 'text', ''), ('product', @pid, 'Local User', 'text', ''),
      ('product', @pid, 'Plan', 'text', ''), ('product', @pid, 'jetpack_provisioning_details', 'textarea', 'on');
    INSERT INTO tblhosting (id, userid, orderid, packageid, regdate, domainstatus)
    SELECT seq, 1, seq, @pid, CURDATE(), 'Pending' FROM seq_1_to_$n;
    INSERT INTO tblcustomfieldsvalues (fieldid, relid, value)
    SELECT f.id, h.id, CASE f.fieldname WHEN 'Site URL' THEN CONCAT('https://original', h.id, '.example/')
                                        WHEN 'Local User' THEN 'admin' WHEN 'Plan' THEN 'Premium' ELSE '' END
    FROM tblhosting h JOIN tblcustomfields f ON f.type = 'product' AND f.relid = h.packageid"
    out=$(php scripts/lib/original-module.php "mysql:host=$DB_HOST;port=$DB_PORT;dbname=$db" \
        "$DB_USER" "$DB_PASS" "$API" "$n") || die "the original module's run failed: $out"
    q mysql "DROP DATABASE IF EXISTS $db"
    say "$out"
    ORIGINAL_MS=$(sed -n 's/^original module per order: \([0-9.]*\) ms.*/\1/p' <<<"$out")
}

# Median of numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
        else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The summary table (markdown) of $WORK/backlog.tsv, and the speed-up over the original.
backlog_summary() {
    local n=$1 path cmd label
    say ""
    say "backlog summary: N=$n, C=$BACKLOG_C, sandbox ${LATENCY_MS} ms, $(cut -f1 "$WORK/backlog.tsv" | sort -u | wc -l) round(s), medians"
    say ""
    say "| path | command | binary | efficiency | jobs/s | CPU per job, worker + mariadbd | statements per job | commits per job | last adoption request after |"
    say "|---|---|---|---|---|---|---|---|---|"
    # Per run: efficiency, jobs/s, worker and mariadbd CPU ms per job, statements, commits
    # (all per job done), seconds to the last adoption request, jobs done, N, adoption requests
    # recorded, wall seconds.
    awk -F'\t' -v OFS='\t' -v l="$LATENCY_MS" -v c="$BACKLOG_C" '{ wall = $6 / 1e6
        print $2, $3, $4, $5 * l / 1000 / c / wall, $5 / wall, $7 * 1000 / $5, $8 * 1000 / $5, $9, $10,
              ($11 == "-") ? "-" : $11 / 1e6, $5, $12, $13, wall }' "$WORK/backlog.tsv" >"$WORK/backlog-derived.tsv"
    for path in $BACKLOG_PATHS; do
        for cmd in run once; do
            while read -r label _; do
                awk -F'\t' -v l="$label" -v p="$path" -v c="$cmd" '$1 == l && $2 == p && $3 == c' \
                    "$WORK/backlog-derived.tsv" >"$WORK/backlog-rows.tsv"
                [ -s "$WORK/backlog-rows.tsv" ] || continue
                m() { cut -f"$1" "$WORK/backlog-rows.tsv" | median; }
                # A run stopped at the limit says how far it got (the fewest done of the rounds).
                local cut adopted=—
                cut=$(awk -F'\t' '$11 < $12 { printf " (stopped at the limit: %d of %d done in %.0f s)", $11, $12, $14; exit }' \
                    <(sort -t$'\t' -k11,11n "$WORK/backlog-rows.tsv"))
                if [ "$path" = scan ]; then
                    adopted=$(printf '%.2f s' "$(m 10)")
                    adopted+=$(awk -F'\t' '$13 < $12 { printf " (%d of %d recorded)", $13, $12; exit }' \
                        <(sort -t$'\t' -k13,13n "$WORK/backlog-rows.tsv"))
                fi
                printf '| %s | %s | %s | %.2f%s | %.0f | %.2f + %.2f ms | %.2f | %.2f | %s |\n' "$path" \
                    "${cmd/once/run --once}" "$label" "$(m 4)" "$cut" "$(m 5)" "$(m 6)" "$(m 7)" "$(m 8)" \
                    "$(m 9)" "$adopted"
            done < <(backlog_bins)
        done
    done
    [ -n "${ORIGINAL_MS:-}" ] || return 0
    [[ " $BACKLOG_PATHS " == *" scan "* ]] || return 0
    say ""
    while read -r label _; do
        for cmd in once run; do
            awk -F'\t' -v l="$label" -v c="$cmd" '$2 == l && $3 == "scan" && $4 == c { print $6 / $5 / 1000 }' \
                "$WORK/backlog.tsv" | median | awk -v x="$ORIGINAL_MS" -v lat="$LATENCY_MS" -v cc="$BACKLOG_C" -v l="$label" -v c="${cmd/once/run --once}" '{
                printf "speed-up through adoption [%s] %s: %.1fx (the original module %.2f ms per order / the scan path %.3f ms per job; target >= 100x)\n", l, c, x / $1, x, $1
                printf "    (the ceiling at c=%d, efficiency 1: %.0fx; the sandbox adds %d ms to the token call too, as a real token request is a round trip)\n", cc, x * cc / lat, lat }'
        done
    done < <(backlog_bins)
}

# Part 6: every round, path and command for every binary, then the baseline and the summary.
backlog_part() {
    local n=${BENCH_BACKLOG_N:-5000} rounds=${BENCH_ROUNDS:-1} round path cmd slot=0 label bin
    local started_us
    started_us=$(now_us)
    local -a bins
    backlog_bins >/dev/null # checks BENCH_BINS here, where die stops the script
    mapfile -t bins < <(backlog_bins)
    step "6. backlog: N=$n at c=$BACKLOG_C, paths $BACKLOG_PATHS, run and run --once, $rounds round(s), binaries: ${bins[*]}"
    sandbox_latency "$LATENCY_MS"
    : >"$WORK/backlog.tsv"
    for spec in "${bins[@]}"; do
        backlog_create_db "${spec%% *}" "${spec#* }" "$n"
    done
    for round in $(seq "$rounds"); do
        for path in $BACKLOG_PATHS; do
            for cmd in run once; do
                # The binary that goes first alternates from one run to the next.
                local -a order=("${bins[@]}")
                if [ $((slot % 2)) -eq 1 ]; then
                    mapfile -t order < <(printf '%s\n' "${bins[@]}" | tac)
                fi
                slot=$((slot + 1))
                for spec in "${order[@]}"; do
                    label=${spec%% *}
                    bin=${spec#* }
                    backlog_run "$round" "$label" "$bin" "$path" "$cmd" "$n"
                done
            done
        done
    done
    backlog_original "${BENCH_ORIGINAL_N:-100}"
    backlog_summary "$n"
    for spec in "${bins[@]}"; do
        q mysql "DROP DATABASE IF EXISTS $(backlog_db "${spec%% *}")"
    done
    say "backlog part took: $((($(now_us) - started_us) / 1000000)) s (${#bins[@]} binaries, $rounds round(s), the baseline included)"
}
