<?php

namespace JetpackTests;

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Jetpack\CustomFields;
use WHMCS\Module\Server\Jetpack\SiteUrl;

/**
 * The module's Site URL parser (lib/SiteUrl.php) refuses what the worker's SiteUrl::parse
 * refuses (the cases of its unit tests), in the worker's words (rules.json), and accepts what
 * it accepts, so Create never turns away an order the worker could provision. What needs a URL
 * parser (IP addresses, punycode, percent-escapes) it leaves to the worker.
 * tests/worker/bad_input.rs checks the same against the worker itself.
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
            array('https:///slashes.example'),
            array('http://@at.example'),
            array('colon.example:'),
            array('padport.example:0080'),
            array('bs.example\\wp'),
            array('a--b.example'),
            array('digits.123abc'),
            array('percent%2eexample'),
            array("\u{fc}n\u{ef}\u{3002}example"),
            array('xn--caf-dma.example'),
        );
    }

    /**
     * @dataProvider acceptedSites
     */
    public function testTheWorkersAcceptedFormsPass(string $site): void
    {
        $this->assertNull(SiteUrl::problem($site));
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
            array('http://u@', 'is not a web address (empty host)'),
            array('.example.com', self::BAD_LABEL),
            array('a..example', self::BAD_LABEL),
            array('example.com.', self::BAD_LABEL),
            array('-dash-.example', self::BAD_LABEL),
            array('*.wild.example', self::BAD_LABEL),
            array('under_score.example', self::BAD_LABEL),
            array(str_repeat('l', 64) . '.example', self::BAD_LABEL),
            array('<script>.com/', 'is not a web address (invalid international domain name)'),
            array('x^y.example', 'is not a web address (invalid international domain name)'),
            array('a[b].example', 'is not a web address (invalid international domain name)'),
            array('ports.example:99999', 'is not a web address (invalid port number)'),
            array('ports.example:abc', 'is not a web address (invalid port number)'),
            array('ports.example:8080:90', 'is not a web address (invalid port number)'),
            array('https://user:pw@both.example:99999/', 'is not a web address (invalid port number)'),
            array('zero.example:0', 'is not a web address (has port 0)'),
            array('zero.example:00', 'is not a web address (has port 0)'),
            array('http://me@example.com/', 'is not a web address (contains a user name)'),
            array('::@colons.example', 'is not a web address (contains a user name)'),
            array('http://u@uq.example?q', 'is not a web address (contains a user name)'),
            array(str_repeat('a', 2000), 'is not a web address (longer than 771 characters)'),
            array("example.com\xff", 'is not a web address (not valid UTF-8)'),
        );
    }

    const BAD_LABEL = "is not a web address (is not a valid domain name (only letters, digits and '-' between the dots))";

    /**
     * @dataProvider refusedSites
     */
    public function testTheWorkersRefusedFormsAreRefused(string $site, string $problem): void
    {
        $this->assertSame($problem, SiteUrl::problem($site));
    }

    /**
     * What the worker refuses but only its URL parser can tell: the module lets it through.
     */
    public function leftToTheWorker(): array
    {
        return array(
            array('127.0.0.1'),
            array('1.2.3'),
            array('0x7f.1'),
            array('2130706433'),
            array('ends.1'),
            array('[::1]'),
            array('xn--.example'),
            array('bad%zzpercent.example'),
        );
    }

    /**
     * @dataProvider leftToTheWorker
     */
    public function testWhatNeedsAUrlParserIsLeftToTheWorker(string $site): void
    {
        $this->assertNull(SiteUrl::problem($site));
    }

    public function testTheTextsComeFromTheRulesFile(): void
    {
        $rules = json_decode(file_get_contents(JETPACK_MODULE_DIR . '/rules.json'), true);
        $texts = $rules['site_url_problems'];

        $this->assertSame($texts['empty'], SiteUrl::problem(' '));
        $this->assertSame(
            str_replace('{reason}', $texts['reasons']['spaces'], $texts['invalid']),
            SiteUrl::problem('a b.example')
        );
        $this->assertSame(
            str_replace(
                '{reason}',
                str_replace('{max}', (string) $rules['limits']['site_url_max_len'], $texts['reasons']['too_long']),
                $texts['invalid']
            ),
            SiteUrl::problem(str_repeat('a', 2000))
        );
    }

    public function testFieldKeysAreThePartBeforeThePipeTrimmed(): void
    {
        $this->assertSame('Site URL', CustomFields::fieldKey(' Site URL |Your site|more'));
        $this->assertSame('Plan', CustomFields::fieldKey('Plan'));
        $this->assertSame('', CustomFields::fieldKey('|Only a label'));
    }
}
