<?php
/**
 * The client's activation email, sent from WHMCS's cron (the AfterCronJob hook in hooks.php).
 *
 * Create returns at once, so the welcome email WHMCS sends then carries the "queued" text, and
 * a service the worker adopted gets no email at all. Once a provision job ends `done` (the
 * activation link is in the job's `result`: "URL to Activate Jetpack: <url>") or starts
 * waiting on the site's DNS (the plan is reserved and activates once the domain resolves), this
 * class sends the client the product email "Jetpack Activation" through WHMCS's own mail
 * (`localAPI('SendEmail')`), with the merge fields {$jetpack_activation_url}, {$jetpack_site},
 * {$jetpack_waiting_dns} and {$jetpack_details}. A licence product's job (its licence row in
 * mod_jetpack_licences, Licences::ofJob) carries the key and the link to the site's licence page
 * in {$jetpack_licence_key} and {$jetpack_licence_url} ({$jetpack_licence_path} for a site not
 * known), and both in {$jetpack_details}, which a template created before licences shows. Only jobs that ended (or started waiting) in
 * the last WINDOW_DAYS days are considered, so a first install does not mail its history;
 * never failed jobs, cancelled ones or terminates. A Jetpack product addon's job (addon_id > 0)
 * gets the same email: the template is a product email, sent for the addon's parent service
 * (tblhosting id: WHMCS's merge fields {$service_*} and {$client_*} are the parent's), with the
 * addon's own link, site and details in the jetpack_* merge fields; its addon's Module Settings
 * (tblmodule_configuration configoption5) switch it off, and an addon Terminated, Cancelled or
 * Fraud (or gone) gets none.
 *
 * Never twice: each email is claimed before it is sent by inserting its row in
 * `mod_jetpack_emails` (PRIMARY KEY (job_id, kind), INSERT IGNORE): of two cron runs, on one
 * WHMCS server or two, exactly one inserts the row, and only that one sends. A send that
 * fails is recorded (status `failed`, its error, an activity-log line) and claimed again, by a
 * compare-and-set on its attempt count, at most MAX_TRIES times in all, RETRY_AFTER_MINUTES
 * apart. A run that died between its claim and the answer leaves the row `sending`: it is
 * never sent again (it may have gone out), and stays for an admin to see. A disabled template
 * (tblemailtemplates.disabled, or SendEmail answering "Email Template is disabled") is no
 * failure: the email is recorded `disabled`, with one activity-log line, and never tried again.
 *
 * The site in the merge fields is decoded for reading, but a percent-encoded control character
 * (a line break) stays encoded: it must never reach the subject, a mail header, decoded.
 *
 * Switched off per product by its Module Settings (configoption5 = 'off'): the job's email is
 * then recorded as `skipped`, so turning the setting on later does not mail older jobs.
 *
 * Every query is parameterised and uses an index (see EmailTest::testQueriesUseIndexes).
 * Times are UTC from the database clock.
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Email
{
    const TABLE = 'mod_jetpack_emails';
    const JOBS = 'mod_jetpack_jobs';
    const TEMPLATES = 'tblemailtemplates';

    /** The product email template the module provides (tblemailtemplates.name). */
    const TEMPLATE = 'Jetpack Activation';

    /** Kinds of email: the link (or the plan found active), and the plan waiting on DNS. */
    const KIND_ACTIVATED = 'activated';
    const KIND_WAITING = 'waiting_dns';

    /** Row states in mod_jetpack_emails. */
    const SENDING = 'sending';
    const SENT = 'sent';
    const FAILED = 'failed';
    const GAVE_UP = 'gave_up';
    const SKIPPED = 'skipped';
    /** Not sent because the template is disabled in WHMCS: final, never tried again. */
    const DISABLED = 'disabled';

    /** What SendEmail answers for a disabled template (compared case-insensitively). */
    const DISABLED_ANSWER = 'Email Template is disabled';

    /** The product setting (tblproducts.configoption5) and its value that switches it off. */
    const SETTING = 'configoption5';
    const SETTING_OFF = 'off';

    /** Jobs that ended (or started waiting) longer ago than this get no email. */
    const WINDOW_DAYS = 7;

    /** SendEmail calls per email at most, the first included. */
    const MAX_TRIES = 3;

    /** A failed send is tried again after this long. */
    const RETRY_AFTER_MINUTES = 30;

    /** Emails sent per cron run at most (the rest wait for the next run). */
    const PER_RUN = 50;

    /** Services in these states get no email (the plan is gone or was never wanted). */
    const NO_EMAIL_STATUSES = array('Terminated', 'Cancelled', 'Fraud');

    /**
     * The AfterCronJob hook: makes sure the template exists, then sends the due emails. Never
     * throws into WHMCS: an error is written to the activity log.
     *
     * @return array counts: sent, failed, skipped, disabled (for tests and logs)
     */
    public static function afterCron()
    {
        $counts = array('sent' => 0, 'failed' => 0, 'skipped' => 0, 'disabled' => 0);
        try {
            self::ensureTemplate();
            $token = bin2hex(random_bytes(16));
            $budget = self::PER_RUN;
            foreach (self::retryable($budget) as $row) {
                if (!self::reclaim($row, $token)) {
                    continue;
                }
                $budget--;
                $why = self::whyNot((int) $row->service_id, (int) $row->addon_id);
                if ($why !== null) {
                    self::record($row->job_id, $row->kind, $token, self::SKIPPED, $why);
                    $counts['skipped']++;
                    continue;
                }
                $target = array((int) $row->service_id, (int) $row->addon_id);
                $counts[self::deliver($row->job_id, $row->kind, $target, $token, (int) $row->attempts + 1)]++;
            }
            if ($budget > 0) {
                foreach (self::candidates($budget) as $job) {
                    $counts[self::handle($job, $token)]++;
                }
            }
        } catch (\PDOException $e) {
            if (ModuleError::isWorkerTableMissing($e)) {
                // The module was uploaded before `jetpack-worker migrate` ran: nothing to send
                // yet (the doctor says what to run), and no log line every five minutes.
                return $counts;
            }
            // The driver's own words, never the statement with its values.
            $said = isset($e->errorInfo[2]) ? (string) $e->errorInfo[2] : $e->getMessage();
            Log::activity('JETPACK MODULE: activation emails: ' . $said, 0);
        } catch (\Throwable $e) {
            Log::activity('JETPACK MODULE: activation emails: ' . $e->getMessage(), 0);
        }
        return $counts;
    }


    /**
     * Creates the "Jetpack Activation" product template (master row, language '') when it is
     * missing. Two cron runs at once may both insert one: each then deletes every copy above
     * the lowest that still holds the module's own text (an admin's edit is never deleted), so
     * one is left however their commits fall.
     *
     * @return int tblemailtemplates.id of the template
     *
     * @throws \PDOException on a database error
     */
    public static function ensureTemplate()
    {
        $existing = self::templateIds();
        if (count($existing) > 0) {
            return $existing[0];
        }
        $own = (int) Capsule::table(self::TEMPLATES)->insertGetId(array(
            'type' => 'product',
            'name' => self::TEMPLATE,
            'subject' => self::templateSubject(),
            'message' => self::templateMessage(),
            'attachments' => '',
            'fromname' => '',
            'fromemail' => '',
            'disabled' => 0,
            'custom' => 1,
            'language' => '',
            'copyto' => '',
            'blind_copy_to' => '',
            'plaintext' => 0,
            'created_at' => Capsule::raw('NOW()'),
            'updated_at' => Capsule::raw('NOW()'),
        ));
        $ids = self::templateIds();
        $lowest = count($ids) > 0 ? $ids[0] : $own;
        $extra = array_values(array_filter($ids, function ($id) use ($lowest) {
            return $id !== $lowest;
        }));
        if (count($extra) > 0) {
            Capsule::table(self::TEMPLATES)
                ->whereIn('id', $extra)
                ->where('message', self::templateMessage())
                ->delete();
        }
        return $lowest;
    }

    /**
     * The provision jobs due an email and not claimed yet, oldest first: those that ended done
     * in the window (kind activated) and those waiting on DNS that started waiting in it (kind
     * waiting_dns), of services and addons. The first is a range on KEY finished (finished_at:
     * only the window's jobs are read), the second uses KEY state_run_at; both look up
     * mod_jetpack_emails by its PRIMARY KEY.
     *
     * @param int $limit at most this many
     *
     * @return array objects with job_id, kind, service_id, addon_id, result
     *
     * @throws \PDOException on a database error
     */
    public static function candidates($limit)
    {
        $done = Capsule::select(
            'SELECT j.id AS job_id, ? AS kind, j.service_id, j.addon_id, j.result
             FROM ' . self::JOBS . ' j
             LEFT JOIN ' . self::TABLE . ' e ON e.job_id = j.id AND e.kind = ?
             WHERE j.state = ? AND j.action = ? AND j.finished_at >= UTC_TIMESTAMP(6) - INTERVAL ? DAY
               AND e.job_id IS NULL
             ORDER BY j.finished_at, j.id LIMIT ?',
            array(self::KIND_ACTIVATED, self::KIND_ACTIVATED, 'done', Requests::PROVISION, self::WINDOW_DAYS, (int) $limit)
        );
        $waiting = Capsule::select(
            'SELECT j.id AS job_id, ? AS kind, j.service_id, j.addon_id, j.result
             FROM ' . self::JOBS . ' j
             LEFT JOIN ' . self::TABLE . ' e ON e.job_id = j.id AND e.kind = ?
             WHERE j.state = ? AND j.action = ? AND j.finished_at IS NULL
               AND j.waiting_since >= UTC_TIMESTAMP(6) - INTERVAL ? DAY
               AND e.job_id IS NULL
             ORDER BY j.id LIMIT ?',
            array(self::KIND_WAITING, self::KIND_WAITING, 'waiting_dns', Requests::PROVISION, self::WINDOW_DAYS, (int) $limit)
        );
        return array_slice(array_merge(Query::rows($done), Query::rows($waiting)), 0, (int) $limit);
    }

    /**
     * Emails whose last send failed and that may be tried again now (KEY retry (status,
     * claimed_at)), with the job's addon (by the jobs' PRIMARY KEY; 0 when the job is gone).
     *
     * @param int $limit at most this many
     *
     * @return array objects with job_id, kind, service_id, addon_id, attempts
     *
     * @throws \PDOException on a database error
     */
    public static function retryable($limit)
    {
        return Query::rows(Capsule::select(
            'SELECT e.job_id, e.kind, e.service_id, COALESCE(j.addon_id, 0) AS addon_id, e.attempts
             FROM ' . self::TABLE . ' e LEFT JOIN ' . self::JOBS . ' j ON j.id = e.job_id
             WHERE e.status = ? AND e.claimed_at < UTC_TIMESTAMP(6) - INTERVAL ? MINUTE AND e.attempts < ?
             ORDER BY e.claimed_at LIMIT ?',
            array(self::FAILED, self::RETRY_AFTER_MINUTES, self::MAX_TRIES, (int) $limit)
        ));
    }

    /**
     * Claims a job's email: one INSERT IGNORE on PRIMARY KEY (job_id, kind). True for exactly
     * one caller however many try at once.
     *
     * @param int    $jobId     mod_jetpack_jobs.id
     * @param string $kind      self::KIND_ACTIVATED or self::KIND_WAITING
     * @param int    $serviceId tblhosting.id
     * @param string $token     this cron run
     * @param string $status    self::SENDING, or self::SKIPPED with $why
     * @param string $why       why it is skipped
     *
     * @return bool whether this caller holds the claim
     *
     * @throws \PDOException on a database error
     */
    public static function claim($jobId, $kind, $serviceId, $token, $status = self::SENDING, $why = null)
    {
        return Capsule::connection()->affectingStatement(
            'INSERT IGNORE INTO ' . self::TABLE . '
               (job_id, kind, service_id, status, attempts, claim_token, claimed_at, error)
             VALUES (?, ?, ?, ?, 1, ?, UTC_TIMESTAMP(6), ?)',
            array((int) $jobId, (string) $kind, (int) $serviceId, (string) $status, (string) $token, $why)
        ) === 1;
    }

    /**
     * Claims a failed email again for one more try: a compare-and-set on its status and
     * attempt count, so of two runs at once only one wins.
     *
     * @param object $row   from retryable()
     * @param string $token this cron run
     *
     * @return bool whether this caller holds the claim
     *
     * @throws \PDOException on a database error
     */
    public static function reclaim($row, $token)
    {
        return Capsule::table(self::TABLE)
            ->where('job_id', (int) $row->job_id)
            ->where('kind', (string) $row->kind)
            ->where('status', self::FAILED)
            ->where('attempts', (int) $row->attempts)
            ->update(array(
                'status' => self::SENDING,
                'attempts' => (int) $row->attempts + 1,
                'claim_token' => (string) $token,
                'claimed_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
            )) === 1;
    }

    /**
     * One candidate: skipped (recorded, not sent) when its product has the email switched off
     * or the service is gone; otherwise claimed, then sent.
     *
     * @param object $job   from candidates()
     * @param string $token this cron run
     *
     * @return string 'sent', 'failed', 'disabled' or 'skipped' (also for a claim another run holds)
     */
    private static function handle($job, $token)
    {
        $why = self::whyNot((int) $job->service_id, (int) $job->addon_id);
        if ($why !== null) {
            self::claim($job->job_id, $job->kind, $job->service_id, $token, self::SKIPPED, $why);
            return 'skipped';
        }
        if (!self::claim($job->job_id, $job->kind, $job->service_id, $token)) {
            return 'skipped';
        }
        return self::deliver($job->job_id, $job->kind, array((int) $job->service_id, (int) $job->addon_id), $token, 1);
    }

    /**
     * Why the target's email must not go out now (the service, or the addon, gone or
     * Terminated/Cancelled/Fraud, or its product's or addon's setting off), or null when it
     * may. Asked before a first send and before each retry, so an email that failed does not go
     * out later to a target terminated meanwhile.
     *
     * @param int $serviceId tblhosting.id (an addon's parent: the email is sent for it)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return string|null
     */
    private static function whyNot($serviceId, $addonId = 0)
    {
        $service = Capsule::table('tblhosting')->where('id', (int) $serviceId)
            ->first(array('id', 'packageid', 'domainstatus'));
        if ($service === null) {
            return 'the service no longer exists';
        }
        if ((int) $addonId > 0) {
            return self::whyNotAddon((int) $addonId);
        }
        if (in_array((string) $service->domainstatus, self::NO_EMAIL_STATUSES, true)) {
            return 'the service is ' . $service->domainstatus;
        }
        if (!self::enabledFor((int) $service->packageid)) {
            return "the product's setting \"Send the Jetpack activation email\" is off";
        }
        return null;
    }

    /**
     * whyNot() for an addon: gone, Terminated/Cancelled/Fraud, or its addon's Module Settings
     * switch the email off (tblmodule_configuration, by its UNIQUE key).
     *
     * @param int $addonId tblhostingaddons.id
     *
     * @return string|null
     */
    private static function whyNotAddon($addonId)
    {
        $addon = Capsule::table('tblhostingaddons')->where('id', (int) $addonId)->first(array('addonid', 'status'));
        if ($addon === null) {
            return 'the addon no longer exists';
        }
        if (in_array((string) $addon->status, self::NO_EMAIL_STATUSES, true)) {
            return 'the addon is ' . $addon->status;
        }
        $value = Capsule::table('tblmodule_configuration')
            ->where('entity_type', 'addon')
            ->where('entity_id', (int) $addon->addonid)
            ->where('setting_name', self::SETTING)
            ->value('value');
        if (trim((string) $value) === self::SETTING_OFF) {
            return "the addon's setting \"Send the Jetpack activation email\" is off";
        }
        return null;
    }

    /**
     * Whether the product sends the email: on unless its setting says 'off' (products saved
     * before the setting existed have '' there, and send).
     *
     * @param int $productId tblproducts.id
     *
     * @return bool
     */
    public static function enabledFor($productId)
    {
        $value = Capsule::table('tblproducts')->where('id', (int) $productId)->value(self::SETTING);
        return trim((string) $value) !== self::SETTING_OFF;
    }

    /**
     * Sends a claimed email through WHMCS and records the answer (fenced by the claim token).
     *
     * @param int    $jobId
     * @param string $kind
     * @param array  $target  array(tblhosting.id the email is sent for, tblhostingaddons.id or 0)
     * @param string $token   the claim this run holds
     * @param int    $attempt this send's number, the first is 1
     *
     * @return string 'sent', 'failed' or 'disabled' (the template is disabled: not sent, final)
     */
    private static function deliver($jobId, $kind, array $target, $token, $attempt)
    {
        list($serviceId, $addonId) = $target;
        $disabled = false;
        try {
            $disabled = self::templateDisabled();
            $reply = $disabled ? null : localAPI('SendEmail', array(
                'messagename' => self::TEMPLATE,
                'id' => (int) $serviceId,
                'customvars' => base64_encode(serialize(self::mergeFields($jobId, $kind, $serviceId, $addonId))),
            ));
            $ok = !$disabled && is_array($reply) && isset($reply['result']) && $reply['result'] === 'success';
            $error = $ok || $disabled ? null : self::replyError($reply);
            $disabled = $disabled || ($error !== null && stripos($error, self::DISABLED_ANSWER) !== false);
        } catch (\Throwable $e) {
            $ok = false;
            $error = get_class($e) . ': ' . $e->getMessage();
        }
        if ($ok) {
            self::record($jobId, $kind, $token, self::SENT, null);
            return 'sent';
        }
        $clientId = (int) Capsule::table('tblhosting')->where('id', (int) $serviceId)->value('userid');
        if ($disabled) {
            // Not a failure to retry: the admin switched the template off. Recorded once.
            self::record($jobId, $kind, $token, self::DISABLED, self::DISABLED_ANSWER);
            Log::activity(self::disabledLine($serviceId, $addonId), $clientId);
            return 'disabled';
        }
        $final = $attempt >= self::MAX_TRIES;
        self::record($jobId, $kind, $token, $final ? self::GAVE_UP : self::FAILED, $error);
        Log::activity(self::failureLine($serviceId, $error, $attempt, $final, $addonId), $clientId);
        return 'failed';
    }

    /**
     * Whether the master "Jetpack Activation" template is disabled (tblemailtemplates.disabled,
     * Setup → Email Templates → "Disable"); WHMCS's SendEmail would refuse it.
     *
     * @return bool
     */
    private static function templateDisabled()
    {
        $ids = self::templateIds();
        if (count($ids) === 0) {
            return false;
        }
        return (int) Capsule::table(self::TEMPLATES)->where('id', $ids[0])->value('disabled') === 1;
    }

    /**
     * The activity-log line for an email not sent because its template is disabled (one per
     * job, never followed by a retry).
     *
     * @param int $serviceId
     * @param int $addonId   0 for the service itself
     *
     * @return string
     */
    public static function disabledLine($serviceId, $addonId = 0)
    {
        return ModuleError::PREFIX . ModuleError::target($serviceId, $addonId) . ' - the "' . self::TEMPLATE
            . '" email was not sent: the template is disabled in WHMCS (Setup → Email Templates); '
            . 'it is not tried again';
    }

    /**
     * The activity-log line for a send that failed.
     *
     * @param int    $serviceId
     * @param string $error
     * @param int    $attempt
     * @param bool   $final   whether it is not tried again
     * @param int    $addonId 0 for the service itself
     *
     * @return string
     */
    public static function failureLine($serviceId, $error, $attempt, $final, $addonId = 0)
    {
        $then = $final
            ? 'it is not tried again; send it from the service with Send Message'
            : 'it is tried again in ' . self::RETRY_AFTER_MINUTES . ' minutes';
        return ModuleError::PREFIX . ModuleError::target($serviceId, $addonId) . ' - the "' . self::TEMPLATE
            . '" email could not be sent (try ' . (int) $attempt . ' of ' . self::MAX_TRIES . '): '
            . $error . '; ' . $then;
    }

    /**
     * The merge fields of the email, HTML-escaped (the template is HTML): jetpack_activation_url
     * (empty without a link), jetpack_site (jetpack_site_text unescaped, for the subject),
     * jetpack_waiting_dns (1 or 0), jetpack_details (the
     * worker's text for the job).
     *
     * @param int    $jobId
     * @param string $kind
     * @param int    $serviceId tblhosting.id (an addon's parent)
     * @param int    $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return array
     */
    public static function mergeFields($jobId, $kind, $serviceId, $addonId = 0)
    {
        $result = (string) Capsule::table(self::JOBS)->where('id', (int) $jobId)->value('result');
        $url = '';
        if (strpos($result, Messages::ACTIVATION_PREFIX) === 0) {
            $url = trim(substr($result, strlen(Messages::ACTIVATION_PREFIX)));
        }
        $details = $kind === self::KIND_WAITING || $result === ''
            ? CustomFields::currentDetails($serviceId, $addonId)
            : $result;
        $site = Capsule::table(Requests::LEDGER)
            ->where('service_id', (int) $serviceId)
            ->where('addon_id', (int) $addonId)
            ->where('job_id', (int) $jobId)
            ->orderBy('id', 'desc')
            ->value('site');
        if ($site === null) {
            $site = Requests::currentSiteUrl($serviceId, $addonId);
        }
        $licence = Licences::ofJob($serviceId, $addonId, $jobId);
        $key = '';
        $licenceUrl = '';
        if ($licence !== null) {
            $site = Licences::site($licence, $site);
            $key = (string) $licence->license_key;
            $licenceUrl = (string) Licences::activationUrl($site);
            // What a template made before licences shows ({else}: the details): both.
            $details = self::licenceText($key, $licenceUrl);
        }
        $siteText = self::siteText((string) $site);
        return array(
            'jetpack_activation_url' => Escape::htmlOrEmpty($url),
            'jetpack_site' => Escape::htmlOrEmpty($siteText),
            // For the subject, which is plain text (no HTML entities there).
            'jetpack_site_text' => $siteText,
            'jetpack_waiting_dns' => $kind === self::KIND_WAITING ? 1 : 0,
            'jetpack_details' => Escape::htmlOrEmpty($details),
            'jetpack_licence_key' => Escape::htmlOrEmpty($key),
            'jetpack_licence_url' => Escape::htmlOrEmpty($licenceUrl),
            'jetpack_licence_path' => Escape::htmlOrEmpty(Catalogue::licenceActivationPath()),
        );
    }

    /**
     * The licence's words for {$jetpack_details}: the key and where to paste it.
     *
     * @param string $key
     * @param string $url the site's licence page, '' when the site is not known
     *
     * @return string not escaped
     */
    public static function licenceText($key, $url)
    {
        return 'Your Jetpack licence key: ' . $key . '. Paste it on your site\'s Jetpack licence page: '
            . ($url !== '' ? $url : 'in its WordPress admin, ' . Catalogue::licenceActivationPath() . ' after the site\'s address') . '.';
    }

    /**
     * A site for the client to read: percent-escapes decoded (an internationalised path reads
     * as typed), except what must never reach a mail header or a line of text decoded: control
     * characters (a line break in the subject would start a new header), the Unicode line and
     * paragraph separators, and bytes that are not UTF-8 (the whole site is then left as
     * stored).
     *
     * @param string $site as stored (the ledger's or the Site URL field's)
     *
     * @return string
     */
    public static function siteText($site)
    {
        $decoded = rawurldecode($site);
        if (preg_match('//u', $decoded) !== 1) {
            return $site;
        }
        return (string) preg_replace_callback('/[\x{0}-\x{1F}\x{7F}-\x{9F}\x{2028}\x{2029}]/u', function ($m) {
            return rawurlencode($m[0]);
        }, $decoded);
    }

    /**
     * The template's subject (WHMCS merge fields are Smarty).
     *
     * @return string
     */
    public static function templateSubject()
    {
        return 'Your Jetpack {if $jetpack_licence_key}licence{else}plan{/if}{if $jetpack_site_text} for {$jetpack_site_text}{/if}';
    }

    /**
     * The template's body, as created when missing (admins may edit it afterwards).
     *
     * @return string
     */
    public static function templateMessage()
    {
        return '<p>Dear {$client_name},</p>' . "\n"
            . '{if $jetpack_waiting_dns}' . "\n"
            . '<p>A Jetpack plan is reserved for {$jetpack_site}. The domain does not resolve yet; '
            . 'the plan activates once it does. Then connect the site with the Jetpack banner in its '
            . 'WordPress dashboard. Nothing else is needed from you.</p>' . "\n"
            . '{elseif $jetpack_licence_key}' . "\n"
            . '<p>Your Jetpack licence is ready. Your licence key:</p>' . "\n"
            . '<p><code>{$jetpack_licence_key}</code></p>' . "\n"
            . '{if $jetpack_licence_url}' . "\n"
            . '<p>Paste it on your site\'s Jetpack licence page: <a href="{$jetpack_licence_url}">{$jetpack_licence_url}</a></p>' . "\n"
            . '{else}' . "\n"
            . '<p>Paste it in your site\'s WordPress admin, at Jetpack → License ({$jetpack_licence_path} after your site\'s address).</p>' . "\n"
            . '{/if}' . "\n"
            . '{elseif $jetpack_activation_url}' . "\n"
            . '<p>Your Jetpack plan for {$jetpack_site} is ready. Activate it here:</p>' . "\n"
            . '<p><a href="{$jetpack_activation_url}">{$jetpack_activation_url}</a></p>' . "\n"
            . '{else}' . "\n"
            . '<p>{$jetpack_details}</p>' . "\n"
            . '{/if}' . "\n"
            . '<p>{$signature}</p>';
    }

    /**
     * Writes the outcome of a send, only while this run still holds the claim.
     *
     * @param int         $jobId
     * @param string      $kind
     * @param string      $token
     * @param string      $status self::SENT, self::FAILED, self::GAVE_UP or self::SKIPPED
     * @param string|null $error
     */
    private static function record($jobId, $kind, $token, $status, $error)
    {
        Capsule::table(self::TABLE)
            ->where('job_id', (int) $jobId)
            ->where('kind', (string) $kind)
            ->where('claim_token', (string) $token)
            ->update(array(
                'status' => $status,
                'sent_at' => $status === self::SENT ? Capsule::raw('UTC_TIMESTAMP(6)') : null,
                'error' => $error === null ? null : mb_substr((string) $error, 0, 2000),
            ));
    }

    /**
     * The ids of the master "Jetpack Activation" product template, lowest first (KEY name).
     *
     * @return int[]
     */
    private static function templateIds()
    {
        $ids = Capsule::table(self::TEMPLATES)
            ->where('name', self::TEMPLATE)
            ->where('type', 'product')
            ->where('language', '')
            ->orderBy('id')
            ->pluck('id');
        $out = array();
        foreach ($ids as $id) {
            $out[] = (int) $id;
        }
        return $out;
    }

    /**
     * What a SendEmail reply that is not success says.
     *
     * @param mixed $reply
     *
     * @return string
     */
    private static function replyError($reply)
    {
        if (is_array($reply) && isset($reply['message']) && (string) $reply['message'] !== '') {
            return (string) $reply['message'];
        }
        return 'SendEmail answered ' . substr(json_encode($reply), 0, 500);
    }
}
