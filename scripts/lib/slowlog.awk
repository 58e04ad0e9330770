# Reads a MariaDB slow query log (long_query_time=0) and prints one line per statement:
#   kind<TAB>query_time_ms<TAB>rows_examined
# where kind is the statement with literals replaced (numbers -> N, strings -> 'S') and cut
# to 90 characters, so the same statement with other values counts as one kind.
/^# Query_time:/ {
    qt = $3; re = 0
    for (i = 1; i <= NF; i++) if ($i == "Rows_examined:") re = $(i + 1)
    inq = 1; sql = ""; next
}
/^# / { next }
/^SET timestamp=/ { next }
/^use / { next }
inq {
    sql = sql " " $0
    if ($0 ~ /;$/) {
        gsub(/[ \t]+/, " ", sql); gsub(/'[^']*'/, "'S'", sql); gsub(/\<[0-9]+(\.[0-9]+)?\>/, "N", sql)
        gsub(/(N, )+N/, "N", sql); sub(/^ /, "", sql)
        printf "%s\t%.3f\t%d\n", substr(sql, 1, 90), qt * 1000, re
        inq = 0
    }
}
