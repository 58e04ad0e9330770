<?php

namespace JetpackTests;

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Jetpack\Order;

/**
 * The module's Site URL check refuses what the worker's SiteUrl::parse refuses (the cases of
 * its unit tests) and accepts what it accepts, so Create never turns away an order the
 * worker could provision.
 */
final class SiteUrlTest extends TestCase
{
    public function acceptedSites(): array
    {
        return array(
            array('https://Example.COM/blog/'),
            array('HTTP://a.example'),
            array('a.example:8080/wp'),
            array('bücher.example'),
            array('192.0.2.7'),
            array('[2001:db8::1]'),
            array('example.com/path@with-at'),
            array(' example.com '),
        );
    }

    /**
     * @dataProvider acceptedSites
     */
    public function testTheWorkersAcceptedFormsPass(string $site): void
    {
        $this->assertNull(Order::siteUrlProblem($site));
    }

    public function refusedSites(): array
    {
        return array(
            array('  ', 'is empty'),
            array('javascript:alert(1)', 'is not a web address (only http:// and https:// are allowed)'),
            array('ftp://example.com', 'is not a web address (only http:// and https:// are allowed)'),
            array('user:pw@example.com', 'is not a web address (only http:// and https:// are allowed)'),
            array('example.com/?q=1', 'is not a web address (contains ? or #)'),
            array('example.com#top', 'is not a web address (contains ? or #)'),
            array('exa mple.com', 'is not a web address (contains spaces)'),
            array("exa\tmple.com", 'is not a web address (contains spaces)'),
            array('localhost', 'is not a web address (has no domain name)'),
            array('localhost:8080', 'is not a web address (has no domain name)'),
            array('https://', 'is not a web address (empty host)'),
            array('.example.com', 'is not a web address (has no domain name)'),
            array('http://me@example.com/', 'is not a web address (contains a user name)'),
            array(str_repeat('a', 2000), 'is not a web address (longer than 771 characters)'),
            array("example.com\xff", 'is not a web address (not valid UTF-8)'),
        );
    }

    /**
     * @dataProvider refusedSites
     */
    public function testTheWorkersRefusedFormsAreRefused(string $site, string $problem): void
    {
        $this->assertSame($problem, Order::siteUrlProblem($site));
    }

    public function testFieldKeysAreThePartBeforeThePipeTrimmed(): void
    {
        $this->assertSame('Site URL', Order::fieldKey(' Site URL |Your site|more'));
        $this->assertSame('Plan', Order::fieldKey('Plan'));
        $this->assertSame('', Order::fieldKey('|Only a label'));
    }
}
