<?php

namespace JetpackTests;

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Jetpack\Catalogue;
use WHMCS\Module\Server\Jetpack\OrderChecks;

/**
 * Which checks an action's order gets, asked in one place (OrderChecks::checksFor, answered by
 * the catalogue): a provision and a change of plan the whole order, a terminate only what the
 * cancel sends, a suspend only the target; a retry with no job yet names no action and gets
 * the whole order. What the checks refuse is in ValidationTest, AddonTest, ModuleSettingsTest
 * and the worker's contract test (tests/worker/bad_input.rs).
 */
final class OrderChecksTest extends TestCase
{
    public function testEachActionGetsTheChecksOfWhatItSends(): void
    {
        $this->assertSame(Catalogue::CHECKS_ORDER, OrderChecks::checksFor('provision'));
        $this->assertSame(Catalogue::CHECKS_ORDER, OrderChecks::checksFor('change'));
        $this->assertSame(Catalogue::CHECKS_CANCEL, OrderChecks::checksFor('terminate'));
        $this->assertSame(Catalogue::CHECKS_TARGET, OrderChecks::checksFor('suspend'));
        $this->assertSame(Catalogue::CHECKS_TARGET, OrderChecks::checksFor('unsuspend'));
        $this->assertSame(Catalogue::CHECKS_ORDER, OrderChecks::checksFor(null), 'no action known: the whole order');
    }
}
