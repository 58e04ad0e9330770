<?php
/**
 * The baseline of scripts/bench --backlog: what the original synchronous WHMCS module
 * (Automattic's 2018 jetpack.php, /work/shared/reference/partner-api.md section 1) did per
 * order at checkout, one order after another, against the bench's sandbox:
 *
 *   1. a fresh OAuth token (POST /oauth2/token, client credentials; no cache, no timeout);
 *   2. the provision call (POST /rest/v1.3/jpphp/provision with that token; no timeout);
 *   3. its write of jetpack_provisioning_details: the field row read with ->first() (not scoped
 *      to the product), then the UPDATE of tblcustomfieldsvalues scoped by the field alone
 *      (its bug, kept: the cost of what it did).
 *
 * Each HTTP call opens its own curl handle (curl_init per call, as make_api_request did), so
 * each pays a new connection. Two differences, both in the original's favour: one database
 * connection serves every order (a checkout opened its own), and the bodies are urlencoded
 * (the original's array CURLOPT_POSTFIELDS sent multipart, which the sandbox does not parse).
 *
 * Usage: php original-module.php DSN USER PASSWORD API_BASE N
 *   DSN e.g. mysql:host=127.0.0.1;port=3306;dbname=jetpack_bench_original
 * Reads the first N services of the product whose custom fields are named as the original
 * expected ('Site URL', 'Local User', 'Plan', 'jetpack_provisioning_details'), then times the
 * N orders. Prints `original module per order: X ms` and the split per step; exits non-zero if
 * any order failed.
 */

if ($argc !== 6) {
    fwrite(STDERR, "usage: php original-module.php DSN USER PASSWORD API_BASE N\n");
    exit(2);
}
list(, $dsn, $user, $password, $api, $n) = $argv;
$n = (int) $n;

/** The original's make_api_request: a POST, a fresh curl handle, no timeout; JSON back. */
function make_api_request($url, $auth = null, $data = null)
{
    $curl = curl_init();
    curl_setopt_array($curl, array(
        CURLOPT_HTTPHEADER => $auth === null ? array() : array('Authorization: Bearer ' . $auth),
        CURLOPT_URL => $url,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_ENCODING => '',
        CURLOPT_HTTP_VERSION => CURL_HTTP_VERSION_1_1,
        CURLOPT_POSTFIELDS => $data === null ? '' : http_build_query($data),
        CURLOPT_CUSTOMREQUEST => 'POST',
    ));
    $response = curl_exec($curl);
    $status = curl_getinfo($curl, CURLINFO_HTTP_CODE);
    if (curl_error($curl)) {
        throw new Exception('Unable to connect: ' . curl_errno($curl) . ' - ' . curl_error($curl));
    }
    curl_close($curl);
    if (empty($response)) {
        throw new Exception('Empty response');
    }
    $decoded = json_decode($response);
    $decoded->http_status = $status;
    return $decoded;
}

$db = new PDO($dsn, $user, $password, array(PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION));
// What WHMCS hands the module in $params: the custom fields by name and the order id.
$orders = $db->query(
    "SELECT h.id, h.orderid, p.configoption1, p.configoption2,
            MAX(IF(f.fieldname = 'Site URL', v.value, NULL)) AS site,
            MAX(IF(f.fieldname = 'Local User', v.value, NULL)) AS local_user,
            MAX(IF(f.fieldname = 'Plan', v.value, NULL)) AS plan
     FROM tblhosting h
     JOIN tblproducts p ON p.id = h.packageid
     JOIN tblcustomfields f ON f.type = 'product' AND f.relid = p.id
     JOIN tblcustomfieldsvalues v ON v.fieldid = f.id AND v.relid = h.id
     GROUP BY h.id ORDER BY h.id LIMIT " . $n
)->fetchAll(PDO::FETCH_ASSOC);
if (count($orders) !== $n) {
    fwrite(STDERR, "original module: found " . count($orders) . " of $n orders\n");
    exit(1);
}

$spent = array('token' => 0, 'provision' => 0, 'details' => 0);
$failed = 0;
$start = hrtime(true);
foreach ($orders as $o) {
    $t = hrtime(true);
    $token = make_api_request($api . '/oauth2/token', null, array(
        'client_id' => $o['configoption1'],
        'client_secret' => $o['configoption2'],
        'grant_type' => 'client_credentials',
        'scope' => 'jetpack-partner',
    ));
    $spent['token'] += hrtime(true) - $t;
    if (!isset($token->access_token)) {
        $failed++;
        continue;
    }
    $t = hrtime(true);
    $response = make_api_request($api . '/rest/v1.3/jpphp/provision', $token->access_token, array(
        'plan' => strtolower($o['plan']),
        'siteurl' => rtrim(preg_replace('(^https?://)', '', $o['site']), '/'),
        'local_user' => $o['local_user'],
        'force_register' => true,
    ));
    $spent['provision'] += hrtime(true) - $t;
    if (!(isset($response->success) && $response->success === true)) {
        $failed++;
        continue;
    }
    // save_provisioning_details: Capsule's ->first() and ->update(), as prepared statements.
    $t = hrtime(true);
    $field = $db->prepare("SELECT * FROM tblcustomfields WHERE fieldname = ? AND type = ? LIMIT 1");
    $field->execute(array('jetpack_provisioning_details', 'product'));
    $fieldId = $field->fetch(PDO::FETCH_ASSOC)['id'];
    $details = !empty($response->next_url) ? 'URL to Activate Jetpack: ' . $response->next_url
        : 'The domain did not appear to resolve when provisioning was attempted however a Jetpack plan is waiting for ' . $o['site'];
    $update = $db->prepare("UPDATE tblcustomfieldsvalues SET relid = ?, value = ? WHERE fieldid = ?");
    $update->execute(array($o['orderid'], $details, $fieldId));
    $spent['details'] += hrtime(true) - $t;
}
$total = hrtime(true) - $start;

$ms = function ($ns) use ($n) {
    return sprintf('%.2f', $ns / 1e6 / $n);
};
printf("original module per order: %s ms (%d orders one after another; token %s ms, provision %s ms, details UPDATE %s ms)\n",
    $ms($total), $n, $ms($spent['token']), $ms($spent['provision']), $ms($spent['details']));
if ($failed > 0) {
    fwrite(STDERR, "original module: $failed of $n orders failed\n");
    exit(1);
}
