<?php

namespace JetpackTests\Support;

/**
 * Products and addons that sell Jetpack licences (Module Settings configoption9..12) and the
 * licence rows jetpack-worker leaves in mod_jetpack_licences, for the tests of what the module
 * and the dashboard show and record. For a DatabaseTestCase.
 */
trait LicenceSeed
{
    /** The fields of a licence product: no Local User, no Plan. */
    protected static $licenceFields = array('Site URL|Your WordPress site', 'jetpack_provisioning_details|Jetpack Provisioning Details');

    /**
     * A product selling licences of $slug (Jetpack API = licence), without partner credentials.
     *
     * @param array $options token, slug, attach ('on' or ''), fields, name
     *
     * @return int tblproducts.id
     */
    protected function licenceProduct(array $options = array())
    {
        $o = $options + array(
            'token' => 'licence-token-5e2a91',
            'slug' => 'jetpack-backup-daily',
            'attach' => '',
            'fields' => self::$licenceFields,
            'name' => 'Jetpack Backup licence',
        );
        $product = $this->product(array('name' => $o['name'], 'client_id' => '', 'secret' => '', 'fields' => $o['fields']));
        $this->exec(
            "UPDATE tblproducts SET configoption9 = 'licence', configoption10 = ?, configoption11 = ?, configoption12 = ?
             WHERE id = ?",
            array($o['token'], $o['slug'], $o['attach'], $product)
        );
        return $product;
    }

    /**
     * A licence row as the worker leaves it.
     *
     * @param int   $serviceId
     * @param array $row       addon_id, product, license_key, state, issue_started_at, issued_at,
     *                         attached_site, attached_at, revoked_at, revoked_outside, job_id
     *
     * @return int mod_jetpack_licences.id
     */
    protected function licence($serviceId, array $row = array())
    {
        $r = $row + array(
            'addon_id' => 0,
            'product' => 'jetpack-backup-daily',
            'license_key' => 'jetpack-backup-daily_aB3dE5fG7hJ9',
            'state' => 'issued',
            'issue_started_at' => '2026-12-07 14:02:11.000000',
            'issued_at' => '2026-12-07 14:02:12.000000',
            'attached_site' => null,
            'attached_at' => null,
            'revoked_at' => null,
            'revoked_outside' => 0,
            'job_id' => null,
        );
        $this->exec(
            'INSERT INTO mod_jetpack_licences (service_id, addon_id, product, license_key, state, issue_started_at,
                 issued_at, attached_site, attached_at, revoked_at, revoked_outside, job_id, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))',
            array($serviceId, $r['addon_id'], $r['product'], $r['license_key'], $r['state'], $r['issue_started_at'],
                $r['issued_at'], $r['attached_site'], $r['attached_at'], $r['revoked_at'], $r['revoked_outside'], $r['job_id'])
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * An `unknown` licence: its issue answer was lost and could not be looked up.
     *
     * @return int mod_jetpack_licences.id
     */
    protected function unknownLicence($serviceId, array $row = array())
    {
        return $this->licence($serviceId, $row + array('license_key' => null, 'state' => 'unknown', 'issued_at' => null));
    }

    /**
     * The requests of the service with their detail, oldest first.
     *
     * @return array rows: id, addon_id, action, requested_by, detail
     */
    protected function licenceRequests($serviceId)
    {
        return $this->select(
            'SELECT id, addon_id, action, requested_by, detail FROM mod_jetpack_requests WHERE service_id = ? ORDER BY id',
            array($serviceId)
        );
    }
}
