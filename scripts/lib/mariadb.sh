# shellcheck shell=bash
# Test/demo environment helpers. Source this file (scripts/test, scripts/demo), then call:
#
#   ensure_mariadb   install (if needed) and start (if needed) a local MariaDB server, create the
#                    superuser-ish test account jetpack_test / jetpack_test (@127.0.0.1 and @localhost)
#                    and database jetpack_test, and export
#                    DATABASE_URL=mysql://jetpack_test:jetpack_test@127.0.0.1:3306/jetpack_test
#   ensure_php       install php-cli, php-mysql, phpunit and php-illuminate-database if php or
#                    phpunit is missing, and smarty4 if it is (for the WHMCS PHP module tests)
#
# Written for Debian (bookworm) running as root, e.g. a fresh CI machine without systemd. Both
# functions are idempotent and print nothing when there is nothing to do. They return non-zero
# (after printing why to stderr) on failure, so callers running under `set -e` stop there.
# The root account is only ever used over the unix socket (the Debian default: unix_socket auth).

JETPACK_TEST_DB_USER=jetpack_test
JETPACK_TEST_DB_PASSWORD=jetpack_test
JETPACK_TEST_DB_NAME=jetpack_test
JETPACK_TEST_DB_HOST=127.0.0.1
JETPACK_TEST_DB_PORT=3306

_JETPACK_APT_UPDATED=${_JETPACK_APT_UPDATED:-}

_jetpack_log() { echo "[env] $*" >&2; }

# Run a command as root (directly when we are root, else through non-interactive sudo).
_jetpack_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        _jetpack_log "need root (or sudo) to run: $*"
        return 1
    fi
}

# apt-get install, with a single `apt-get update` per shell before the first install.
_jetpack_apt_install() {
    if [ -z "$_JETPACK_APT_UPDATED" ]; then
        _jetpack_log "apt-get update"
        _jetpack_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null \
            || { _jetpack_log "apt-get update failed"; return 1; }
        _JETPACK_APT_UPDATED=1
    fi
    _jetpack_log "apt-get install $*"
    _jetpack_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        --no-install-recommends "$@" </dev/null >/dev/null \
        || { _jetpack_log "apt-get install $* failed"; return 1; }
}

# mariadb client as root over the unix socket.
_jetpack_mariadb_root() {
    _jetpack_as_root mariadb --protocol=socket -uroot "$@" </dev/null
}

ensure_mariadb() {
    if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb >/dev/null 2>&1; then
        _jetpack_log "MariaDB not installed: installing mariadb-server mariadb-client"
        _jetpack_apt_install mariadb-server mariadb-client || return 1
    fi

    _jetpack_as_root mkdir -p /run/mysqld /var/log/mysql || return 1
    _jetpack_as_root chown mysql:mysql /run/mysqld /var/log/mysql || return 1

    if ! _jetpack_mariadb_root -e 'select 1' >/dev/null 2>&1; then
        _jetpack_log "starting mariadbd (log: /var/log/mysql/error.log)"
        _jetpack_as_root start-stop-daemon --start --oknodo --background \
            --output /var/log/mysql/mariadbd.out \
            --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null || {
            _jetpack_log "start-stop-daemon failed to start mariadbd"
            return 1
        }
        local waited=0
        until _jetpack_mariadb_root -e 'select 1' >/dev/null 2>&1; do
            local why=""
            if [ "$waited" -ge 120 ]; then # 120 x 0.5 s = 60 s
                why="MariaDB did not answer 'select 1' as root over the unix socket within 60 s"
            elif [ "$waited" -ge 4 ] && ! start-stop-daemon --status --exec /usr/sbin/mariadbd; then
                why="mariadbd exited during startup"
            fi
            if [ -n "$why" ]; then
                _jetpack_log "$why"
                local f
                for f in /var/log/mysql/mariadbd.out /var/log/mysql/error.log; do
                    if [ -s "$f" ]; then
                        _jetpack_log "--- last lines of $f:"
                        tail -n 30 "$f" >&2 || true
                    fi
                done
                return 1
            fi
            sleep 0.5
            waited=$((waited + 1))
        done
        _jetpack_log "mariadbd is up"
    fi

    # Tests create/drop one database per test and create least-privilege users of their own,
    # hence ALL PRIVILEGES ON *.* WITH GRANT OPTION. ALTER USER resets the password in case the
    # account already existed with another one.
    local u=$JETPACK_TEST_DB_USER p=$JETPACK_TEST_DB_PASSWORD db=$JETPACK_TEST_DB_NAME h sql=""
    for h in 127.0.0.1 localhost; do
        sql+="CREATE USER IF NOT EXISTS '$u'@'$h' IDENTIFIED BY '$p';"
        sql+="ALTER USER '$u'@'$h' IDENTIFIED BY '$p';"
        sql+="GRANT ALL PRIVILEGES ON *.* TO '$u'@'$h' WITH GRANT OPTION;"
    done
    sql+="CREATE DATABASE IF NOT EXISTS \`$db\`;"
    _jetpack_mariadb_root -e "$sql" || {
        _jetpack_log "could not create the $u user / $db database"
        return 1
    }

    # The tests connect over TCP: make sure that path works too.
    if ! MYSQL_PWD=$p mariadb --protocol=tcp -h"$JETPACK_TEST_DB_HOST" -P"$JETPACK_TEST_DB_PORT" \
        -u"$u" "$db" -e 'select 1' </dev/null >/dev/null; then
        _jetpack_log "cannot log in as $u over TCP at $JETPACK_TEST_DB_HOST:$JETPACK_TEST_DB_PORT"
        return 1
    fi

    export DATABASE_URL="mysql://$u:$p@$JETPACK_TEST_DB_HOST:$JETPACK_TEST_DB_PORT/$db"
}

ensure_php() {
    if ! command -v php >/dev/null 2>&1 || ! command -v phpunit >/dev/null 2>&1; then
        _jetpack_log "php/phpunit missing: installing php-cli php-mysql phpunit php-illuminate-database"
        _jetpack_apt_install php-cli php-mysql phpunit php-illuminate-database || return 1
    fi
    # Smarty renders the client area's and the email's templates in the tests, as WHMCS does.
    if [ ! -f /usr/share/php/smarty4/Smarty.class.php ]; then
        _jetpack_log "smarty missing: installing smarty4"
        _jetpack_apt_install smarty4 || return 1
    fi
}
