<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\ModuleError;
use WHMCS\Module\Server\Jetpack\Rules;

/**
 * Create and Terminate refuse, with a `JETPACK MODULE: Service ID: N - …` message saying what to
 * fix, every order the worker could not process, and queue nothing. Accepted forms (friendly
 * field names, values cut at `|`, any-case plans) go through.
 */
final class ValidationTest extends DatabaseTestCase
{
    const PLANS = 'free, personal, premium, professional, jetpack-backup-realtime, '
        . 'jetpack-backup-daily, jetpack-scan, jetpack-anti-spam';

    /**
     * Each case: how to break a valid order, and what the message must say.
     */
    /** Broken orders only a provision is refused for (a terminate never sends these). */
    const PROVISION_ONLY = array(
        'no Local User field', 'no Plan field', 'empty Local User', 'blank Local User',
        'Local User with markup', 'Local User too long', 'unknown plan', 'empty plan',
    );

    public function brokenOrders(): array
    {
        $field = function ($from, $to) {
            return function (ValidationTest $t, $product) use ($from, $to) {
                if ($to === null) {
                    $t->exec('DELETE FROM tblcustomfields WHERE relid = ? AND fieldname = ?', array($product, $from));
                } else {
                    $t->exec('UPDATE tblcustomfields SET fieldname = ? WHERE relid = ? AND fieldname = ?', array($to, $product, $from));
                }
            };
        };
        $value = function ($key, $value) {
            return function (ValidationTest $t, $product, $service) use ($key, $value) {
                $t->updateValue($service, $key, $value);
            };
        };
        $product = function ($column, $value) {
            return function (ValidationTest $t, $product) use ($column, $value) {
                $t->exec("UPDATE tblproducts SET $column = ? WHERE id = ?", array($value, $product));
            };
        };
        $noField = function ($key) {
            return "product 'Jetpack Premium' has no custom field named '$key'; add it under "
                . "Products/Services → Custom Fields with exactly that name (or '$key|Display Name')";
        };
        $cases = array(
            'no Site URL field' => array($field('Site URL|Your WordPress site', null), $noField('Site URL')),
            'misnamed Site URL field' => array($field('Site URL|Your WordPress site', 'Site Url'), $noField('Site URL')),
            'no Local User field' => array($field('Local User', null), $noField('Local User')),
            'no Plan field' => array($field('Plan', 'Plan Name'), $noField('Plan')),
            'no details field' => array(
                $field('jetpack_provisioning_details|Jetpack Provisioning Details', 'Jetpack Provisioning Details'),
                $noField('jetpack_provisioning_details'),
            ),
            'two Site URL fields' => array(
                function (ValidationTest $t, $product) {
                    $t->field($product, 'Site URL');
                },
                "product 'Jetpack Premium' has 2 custom fields named 'Site URL'; delete all but one",
            ),
            'empty Site URL' => array(
                $value('Site URL', ''),
                "the Site URL '' is empty; enter the WordPress site's address (like example.com) and retry",
            ),
            'blank Site URL' => array($value('Site URL', '   '), "the Site URL '   ' is empty"),
            'no Site URL value' => array(
                function (ValidationTest $t, $product, $service) {
                    $t->exec(
                        'DELETE FROM tblcustomfieldsvalues WHERE relid = ? AND fieldid = ?',
                        array($service, $t->fieldId($service, 'Site URL'))
                    );
                },
                "the Site URL '' is empty",
            ),
            'Site URL with a value before the pipe only' => array($value('Site URL', '|example.com'), "the Site URL '' is empty"),
            'ftp Site URL' => array(
                $value('Site URL', 'ftp://example.com'),
                "the Site URL 'ftp://example.com' is not a web address (only http:// and https:// are allowed)",
            ),
            'javascript Site URL' => array(
                $value('Site URL', 'javascript:alert(1)'),
                'is not a web address (only http:// and https:// are allowed)',
            ),
            'Site URL with a query' => array($value('Site URL', 'example.com/?q=1'), 'is not a web address (contains ? or #)'),
            'Site URL with spaces' => array($value('Site URL', 'exa mple.com'), 'is not a web address (contains spaces)'),
            'Site URL without a domain' => array($value('Site URL', 'localhost'), 'is not a web address (has no domain name)'),
            'Site URL with a user name' => array($value('Site URL', 'https://me@example.com'), 'is not a web address (contains a user name)'),
            'Site URL with a bad label' => array(
                $value('Site URL', 'a..example.com'),
                "the Site URL 'a..example.com' is not a web address (is not a valid domain name (only letters, "
                . "digits and '-' between the dots))",
            ),
            'Site URL with a bad port' => array($value('Site URL', 'example.com:99999'), 'is not a web address (invalid port number)'),
            'Site URL too long' => array(
                $value('Site URL', str_repeat('a', 800) . '.com'),
                'is not a web address (longer than 771 characters)',
            ),
            'empty Local User' => array(
                $value('Local User', ''),
                'the Local User is empty; enter an existing WordPress user name of the site and retry',
            ),
            'blank Local User' => array($value('Local User', ' '), 'the Local User is empty'),
            'Local User with markup' => array(
                $value('Local User', '<b>admin</b>'),
                'the Local User contains angle brackets, which WordPress user names cannot; enter the exact user name',
            ),
            'Local User too long' => array($value('Local User', str_repeat('ü', 201)), 'the Local User is longer than 200 characters'),
            'unknown plan' => array($value('Plan', ' Gold '), "'Gold' is not an allowed plan; use one of: " . self::PLANS),
            'empty plan' => array($value('Plan', ''), "'' is not an allowed plan"),
            'no client id' => array(
                $product('configoption1', ''),
                "your credentials for provisioning are not complete: product 'Jetpack Premium' needs the "
                . 'Jetpack Partner Client ID and Client Secret in Module Settings',
            ),
            'blank client secret' => array($product('configoption2', '  '), 'your credentials for provisioning are not complete'),
            'product of another module' => array(
                $product('servertype', 'cpanel'),
                "product 'Jetpack Premium' does not use the jetpack module (its module is 'cpanel')",
            ),
            'product deleted' => array(
                function (ValidationTest $t, $product) {
                    $t->exec('DELETE FROM tblproducts WHERE id = ?', array($product));
                },
                'its product (id %product%) no longer exists; assign the service to a Jetpack product',
            ),
            'service deleted' => array(
                function (ValidationTest $t, $product, $service) {
                    $t->exec('DELETE FROM tblhosting WHERE id = ?', array($service));
                },
                'it does not exist in tblhosting; nothing to do',
            ),
        );
        $all = array();
        foreach ($cases as $name => $case) {
            $all["CreateAccount: $name"] = array('CreateAccount', $case[0], $case[1]);
            if (!in_array($name, self::PROVISION_ONLY, true)) {
                $all["TerminateAccount: $name"] = array('TerminateAccount', $case[0], $case[1]);
            }
        }
        return $all;
    }

    /**
     * The broken orders a terminate is not refused for: what the cancel call never sends.
     */
    public function legacyTerminates(): array
    {
        $all = array();
        foreach ($this->brokenOrders() as $name => $case) {
            $plain = substr($name, strlen('CreateAccount: '));
            if ($case[0] === 'CreateAccount' && in_array($plain, self::PROVISION_ONLY, true)) {
                $all[$plain] = array($case[1]);
            }
        }
        return $all;
    }

    /**
     * A terminate needs only the Site URL and the credentials (the worker's read_cancel): a
     * service set up under the original module or edited since, without a usable Local
     * User or Plan, is still cancelled.
     *
     * @dataProvider legacyTerminates
     */
    public function testATerminateNeedsOnlyWhatTheCancelSends(\Closure $breakIt): void
    {
        $product = $this->product();
        $service = $this->service($product);
        $breakIt($this, $product, $service);

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));
        $requests = $this->requests($service);
        $this->assertCount(1, $requests);
        $this->assertSame('terminate', $requests[0]->action);
    }

    /**
     * @dataProvider brokenOrders
     */
    public function testABrokenOrderIsRefusedWithWhatToFix(string $function, \Closure $breakIt, string $expected): void
    {
        $product = $this->product();
        $service = $this->service($product);
        $params = Whmcs::params($service);
        $breakIt($this, $product, $service);

        $result = call_user_func('jetpack_' . $function, $params);

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - ', $result);
        $this->assertStringContainsString(str_replace('%product%', (string) $product, $expected), $result);
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM mod_jetpack_requests'), 'nothing queued');
        $this->assertSame(0, (int) $this->scalar(
            'SELECT COUNT(*) FROM tblcustomfieldsvalues WHERE relid = ? AND value LIKE ?',
            array($service, '%queued%')
        ));
        $this->assertSame(array(), $this->loggedActivity());
    }

    public function testBrokenOrdersAreRefusedOnWhmcs783Too(): void
    {
        $this->useLayout(self::WHMCS_783);
        $product = $this->product(array('fields' => array('Site URL', 'Local User', 'jetpack_provisioning_details')));
        $service = $this->service($product, array('Site URL' => 'example.com', 'Local User' => 'admin'));

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertStringContainsString("has no custom field named 'Plan'", $result);
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM mod_jetpack_requests'));
    }

    public function testFriendlyNamesValuesCutAtThePipeAndAnyCasePlansAreAccepted(): void
    {
        $product = $this->product(array('fields' => array(
            ' Site URL |Your WordPress site',
            'Local User|WordPress user',
            'Plan|Jetpack plan',
            'jetpack_provisioning_details|Details',
        )));
        $service = $this->service($product, array(
            'Site URL' => 'https://Example.com/blog/|ignored',
            'Local User' => ' admin |x',
            'Plan' => ' PREMIUM |Premium plan',
        ));

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
        $this->assertCount(1, $this->requests($service));
    }

    public function testTheLowestValueRowWinsWhenAServiceHasDuplicates(): void
    {
        $service = $this->service($this->product());
        // A second, later row for Plan with a bad value: WHMCS (and the worker) read the first.
        $this->setValue($service, 'Plan', 'Gold');

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
    }

    public function testEveryAllowedPlanIsAccepted(): void
    {
        $service = $this->service($this->product());
        foreach (explode(', ', self::PLANS) as $plan) {
            $this->updateValue($service, 'Plan', strtoupper($plan));

            $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)), $plan);
        }
        // Every Create is recorded; the worker decides what the repeats mean.
        $this->assertCount(count(explode(', ', self::PLANS)), $this->requests($service));
    }

    public function testCustomerSuppliedValuesAreHtmlEscapedInErrors(): void
    {
        $product = $this->product(array('name' => 'Jetpack & <b>Co</b>'));
        $service = $this->service($product, $this->validValues('example.com', 'admin', '<script>alert("x")</script>'));

        $plan = jetpack_CreateAccount(Whmcs::params($service));
        $this->updateValue($service, 'Plan', 'premium');
        $this->exec("UPDATE tblproducts SET configoption1 = '' WHERE id = ?", array($product));
        $credentials = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertStringContainsString('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;', $plan);
        $this->assertStringContainsString("'Jetpack &amp; &lt;b&gt;Co&lt;/b&gt;'", $credentials);
        foreach (array($plan, $credentials) as $message) {
            $this->assertStringNotContainsString('<', $message);
            $this->assertStringNotContainsString('"', $message);
        }
    }

    public function testLongValuesAreShortenedInErrors(): void
    {
        $service = $this->service($this->product(), $this->validValues('example.com', 'admin', str_repeat('x', 300)));

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertStringContainsString("'" . str_repeat('x', 80) . "…' is not an allowed plan", $result);
    }

    public function testThePlansAndFieldNamesAreTheRulesFiles(): void
    {
        $rules = json_decode(file_get_contents(JETPACK_MODULE_DIR . '/rules.json'), true);

        $this->assertSame(self::PLANS, implode(', ', Rules::planSlugs()));
        $this->assertSame(array_column($rules['plans'], 'slug'), Rules::planSlugs());
        $this->assertSame('Site URL', Rules::fieldName('site_url'));
        $this->assertSame('jetpack_provisioning_details', Rules::fieldName('details'));
        $this->assertSame($rules, Rules::get());
    }

    public function testAMissingRulesFileIsAClearModuleError(): void
    {
        $path = sys_get_temp_dir() . '/jp-no-rules-' . bin2hex(random_bytes(4)) . '.json';

        try {
            Rules::load($path);
            $this->fail('no error');
        } catch (ModuleError $e) {
            $this->assertSame(
                "JETPACK MODULE: the module's rules file $path is missing or unreadable; "
                . "reinstall the Jetpack module's files",
                $e->getMessage()
            );
        }
    }

    /**
     * @return array what a broken rules file holds, and what the error names
     */
    public function brokenRules(): array
    {
        $good = file_get_contents(dirname(__DIR__) . '/modules/servers/jetpack/rules.json');
        $rules = json_decode($good, true);
        $noPlan = $rules;
        unset($noPlan['messages']['bad_plan']);
        $noPlans = $rules;
        $noPlans['plans'] = array();
        $noReason = $rules;
        unset($noReason['site_url_problems']['reasons']['bad_port']);
        return array(
            'not JSON' => array('{"module": ', 'Syntax error'),
            'a list' => array('[1, 2]', 'module'),
            'a message missing' => array(json_encode($noPlan), 'messages.bad_plan'),
            'no plans' => array(json_encode($noPlans), 'plans'),
            'a Site URL reason missing' => array(json_encode($noReason), 'site_url_problems.reasons.bad_port'),
        );
    }

    /**
     * @dataProvider brokenRules
     */
    public function testABrokenRulesFileIsAClearModuleError(string $content, string $names): void
    {
        $path = tempnam(sys_get_temp_dir(), 'jp-rules-');
        file_put_contents($path, $content);

        try {
            Rules::load($path);
            $this->fail('no error');
        } catch (ModuleError $e) {
            $this->assertSame(
                "JETPACK MODULE: the module's rules file $path is broken ($names); reinstall the Jetpack module's files",
                $e->getMessage()
            );
        } finally {
            unlink($path);
        }
    }
}
