<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\LicenceSeed;
use JetpackTests\Support\Templates;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Email;

/**
 * What the customer gets for a licence: the client area shows the key with a copy button and
 * the link to their site's Jetpack licence page (`<site>/wp-admin/admin.php?page=jetpack#/license/activation`),
 * rendered with Smarty as WHMCS renders templates/clientarea.tpl; the activation email carries
 * both (the template the module creates, and one made before licences, through
 * {$jetpack_details}).
 */
final class LicenceClientTest extends DatabaseTestCase
{
    use LicenceSeed;

    const KEY = 'jetpack-backup-daily_aB3dE5fG7hJ9';

    /**
     * @return array the client area's output for the service: template variables, and the HTML
     */
    private function clientArea($service)
    {
        $view = jetpack_ClientArea(Whmcs::params($service));
        $this->assertSame('templates/clientarea.tpl', $view['tabOverviewModuleOutputTemplate']);
        return array($view['templateVariables'], Templates::renderFile($view['tabOverviewModuleOutputTemplate'], $view['templateVariables']));
    }

    public function testTheClientAreaShowsTheKeyACopyButtonAndTheSitesLicencePage(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example/blog/'));
        $this->licence($service, array('license_key' => self::KEY));

        list($vars, $html) = $this->clientArea($service);

        $this->assertSame(self::KEY, $vars['jetpackLicenceKey']);
        $this->assertSame('https://shop.example/blog/wp-admin/admin.php?page=jetpack#/license/activation', $vars['jetpackLicenceUrl']);
        $this->assertStringContainsString('id="jetpack-licence-key" readonly="readonly" value="' . self::KEY . '"', $html);
        $this->assertMatchesRegularExpression('~<button type="button"[^>]*id="jetpack-licence-copy"[^>]*'
            . 'navigator\.clipboard\.writeText\(k\.value\)[^>]*>Copy</button>~', $html);
        $this->assertStringContainsString('<a href="https://shop.example/blog/wp-admin/admin.php?page=jetpack#/license/activation"', $html);
        $this->assertStringNotContainsString('Activate Jetpack', $html, 'no plan activation link');
    }

    public function testTheLinkGoesWhereTheLicenceIsAttachedAndKeepsAnHttpScheme(): void
    {
        $service = $this->service($this->licenceProduct(array('attach' => 'on')), array('Site URL' => 'https://new.example/'));
        $this->licence($service, array('state' => 'attached', 'attached_site' => 'http://attached.example',
            'attached_at' => '2026-12-07 14:02:13'));

        list($vars) = $this->clientArea($service);

        $this->assertSame('http://attached.example/wp-admin/admin.php?page=jetpack#/license/activation', $vars['jetpackLicenceUrl']);
    }

    public function testWhatTheLinkAndKeyCarryIsEscapedInTheHtml(): void
    {
        $site = "https://shop.example/a&b/x'y\"z";
        $key = 'jetpack-backup-daily_<script>alert(1)</script>';
        $service = $this->service($this->licenceProduct(), array('Site URL' => $site));
        $this->licence($service, array('license_key' => $key));

        list($vars, $html) = $this->clientArea($service);

        $this->assertSame($site . '/wp-admin/admin.php?page=jetpack#/license/activation', $vars['jetpackLicenceUrl']);
        $this->assertStringContainsString('href="https://shop.example/a&amp;b/x&#039;y&quot;z/wp-admin/admin.php?page=jetpack#/license/activation"', $html);
        $this->assertStringContainsString('value="jetpack-backup-daily_&lt;script&gt;alert(1)&lt;/script&gt;"', $html);
        $this->assertStringNotContainsString('<script>', $html);
    }

    public function sitesWithoutALink(): array
    {
        return array(
            'no Site URL field value' => array(''),
            'not a web address' => array('javascript:alert(1)'),
            'spaces' => array('my site.example'),
        );
    }

    /**
     * @dataProvider sitesWithoutALink
     */
    public function testWithoutAUsableSiteTheClientAreaSaysWhereToPasteTheKey(string $site): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => $site));
        $this->licence($service);

        list($vars, $html) = $this->clientArea($service);

        $this->assertSame('', $vars['jetpackLicenceUrl']);
        $this->assertStringContainsString(self::KEY, $html);
        $this->assertStringNotContainsString('<a href', $html);
        $this->assertStringContainsString('<code>/wp-admin/admin.php?page=jetpack#/license/activation</code>', $html);
    }

    public function testOnlyALiveLicenceIsShownToTheClient(): void
    {
        $product = $this->licenceProduct();
        $revoked = $this->service($product, array('Site URL' => 'shop.example'));
        $this->licence($revoked, array('state' => 'revoked', 'revoked_at' => '2026-12-08 10:00:00', 'license_key' => 'jetpack-backup-daily_R'));
        $unknown = $this->service($product, array('Site URL' => 'shop.example'));
        $this->unknownLicence($unknown);
        $this->setValue($unknown, 'jetpack_provisioning_details', 'JETPACK MODULE: Service ID: 2 - a licence for jetpack-backup-daily may have been issued');
        $otherServices = $this->service($product, array('Site URL' => 'shop.example'));
        $this->licence($revoked + 1000);

        foreach (array($revoked, $unknown, $otherServices) as $service) {
            list($vars, $html) = $this->clientArea($service);
            $this->assertSame('', $vars['jetpackLicenceKey'], 'service ' . $service);
            $this->assertStringNotContainsString('jetpack-licence-key', $html);
        }
        $this->assertStringNotContainsString('JETPACK MODULE', $this->clientArea($unknown)[1], 'errors are for admins');
    }

    public function testAnAddonShowsItsOwnLicenceWithItsParentsDomain(): void
    {
        $hosting = $this->product(array('name' => 'Hosting', 'servertype' => 'cpanel', 'fields' => array()));
        $service = $this->service($hosting, array(), array('status' => 'Active', 'domain' => 'hosted.example'));
        $definition = $this->addonDefinition(array('client_id' => '', 'secret' => '', 'fields' => array('jetpack_provisioning_details'),
            'settings' => array('configoption9' => 'licence', 'configoption10' => 't', 'configoption11' => 'jetpack-scan')));
        $addon = $this->addon($definition, $service, array());
        $this->licence($service, array('addon_id' => $addon, 'product' => 'jetpack-scan', 'license_key' => 'jetpack-scan_Q1'));

        $vars = jetpack_ClientArea(Whmcs::addonParams($addon))['templateVariables'];
        $serviceVars = jetpack_ClientArea(Whmcs::params($service))['templateVariables'];

        $this->assertSame('jetpack-scan_Q1', $vars['jetpackLicenceKey']);
        $this->assertSame('https://hosted.example/wp-admin/admin.php?page=jetpack#/license/activation', $vars['jetpackLicenceUrl']);
        $this->assertSame('', $serviceVars['jetpackLicenceKey'], 'the parent service has no licence of its own');
    }

    public function testAPlanServiceStillShowsItsActivationLink(): void
    {
        $service = $this->service($this->product());
        $this->setValue($service, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://jetpack.wordpress.com/x');

        list($vars, $html) = $this->clientArea($service);

        $this->assertSame('', $vars['jetpackLicenceKey']);
        $this->assertStringContainsString('<a href="https://jetpack.wordpress.com/x" class="btn btn-primary"', $html);
        $this->assertStringContainsString('Activate Jetpack', $html);
    }

    /**
     * A licence job that ended done (the worker's text, the licence row of the job): the
     * activation email's merge fields carry the key and the link, the template the module
     * creates shows both, and so does one created before licences (its {$jetpack_details}).
     */
    public function testTheActivationEmailCarriesTheKeyAndTheLink(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'https://shop.example/'), array('status' => 'Active'));
        $job = $this->targetJob($service, 0, 'provision', 'done');
        $this->exec('UPDATE mod_jetpack_jobs SET result = ? WHERE id = ?', array('Jetpack licence key: ' . self::KEY, $job));
        $this->licence($service, array('job_id' => $job));
        $GLOBALS['jetpack_test_localapi'] = array();

        $counts = Email::afterCron();

        $this->assertSame(1, $counts['sent']);
        $vars = $GLOBALS['jetpack_test_localapi'][0]['customvars'];
        $url = 'https://shop.example/wp-admin/admin.php?page=jetpack#/license/activation';
        $this->assertSame(self::KEY, $vars['jetpack_licence_key']);
        $this->assertSame($url, $vars['jetpack_licence_url']);
        $this->assertSame('', $vars['jetpack_activation_url']);
        $template = $this->select("SELECT subject, message FROM tblemailtemplates WHERE name = 'Jetpack Activation'")[0];
        $body = Templates::renderString($template->message, $vars + array('client_name' => 'Ann', 'signature' => '--'));
        $this->assertStringContainsString('<code>' . self::KEY . '</code>', $body);
        $this->assertStringContainsString('<a href="' . $url . '">' . $url . '</a>', $body);
        $this->assertSame('Your Jetpack licence for https://shop.example/', Templates::renderString($template->subject, $vars));

        $before = '<p>{if $jetpack_activation_url}<a href="{$jetpack_activation_url}">x</a>{else}{$jetpack_details}{/if}</p>';
        $old = Templates::renderString($before, $vars);
        $this->assertStringContainsString(self::KEY, $old, 'a template made before licences shows the key');
        $this->assertStringContainsString($url, $old, 'and the link');
    }

    public function testThePlansEmailIsUnchanged(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->targetJob($service, 0, 'provision', 'done');
        $this->exec('UPDATE mod_jetpack_jobs SET result = ? WHERE id = ?', array('URL to Activate Jetpack: https://jetpack.wordpress.com/a', $job));
        $GLOBALS['jetpack_test_localapi'] = array();

        Email::afterCron();

        $vars = $GLOBALS['jetpack_test_localapi'][0]['customvars'];
        $this->assertSame('', $vars['jetpack_licence_key']);
        $template = $this->select("SELECT subject, message FROM tblemailtemplates WHERE name = 'Jetpack Activation'")[0];
        $this->assertSame('Your Jetpack plan for https://example.com/', Templates::renderString($template->subject, $vars));
        $this->assertStringContainsString('<a href="https://jetpack.wordpress.com/a">',
            Templates::renderString($template->message, $vars + array('client_name' => 'Ann', 'signature' => '--')));
    }
}
